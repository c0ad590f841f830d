pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/churnwatch.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/churnwatch.v1.serde.rs"));
}
