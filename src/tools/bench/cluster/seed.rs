//! The state the cluster benchmark starts from: for each partition, a full checkpoint of the
//! subscribers keyed to it (as producers key them, murmur2), with a few days of usage each,
//! written to the changelog as the partition's last owner would have left it.
//!
//! Built a partition at a time, so the benchmark holds one partition's state, not all of it.

use super::super::{build_history_of, BenchError};
use super::ClusterOptions;
use crate::config::Config;
use crate::detect::Engine;
use crate::driver::Driver;
use crate::kafka::changelog::writer::Checkpointer;
use crate::tools::live::partition_of;
use crate::tools::workload::numbers::subscriber;

/// What the changelog holds before the instances start.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub subscribers: u64,
    pub records: u64,
    pub bytes: u64,
}

/// Checkpoints every partition's subscribers, their history ending the day before
/// `first_input_ms`; the inputs' offsets in each checkpoint are 0.
pub(super) async fn checkpoint_partitions(
    cfg: &Config,
    opts: &ClusterOptions,
    first_input_ms: i64,
) -> Result<Seeded, BenchError> {
    let p = opts.partitions;
    let mut owner = Vec::with_capacity(opts.subscribers as usize);
    let mut text = String::new();
    for i in 0..opts.subscribers {
        use std::fmt::Write as _;
        text.clear();
        let _ = write!(text, "{}", subscriber(i));
        owner.push(partition_of(&text, p) as u8);
    }
    let producer = crate::kafka::producer::create(cfg)?;
    let t = &cfg.kafka.topics;
    let mut seeded = Seeded::default();
    for part in 0..p {
        let mine: Vec<u32> = (0..opts.subscribers as u32)
            .filter(|&i| i32::from(owner[i as usize]) == part)
            .collect();
        let mut driver = Driver::new(Engine::new(cfg, &[])?, i64::MAX);
        let first = driver.engine().calendar().day_of(first_input_ms) - opts.history_days as i32;
        let n = mine.len() as u64;
        tokio::task::block_in_place(|| {
            build_history_of(
                &mut driver,
                n,
                |k| u64::from(mine[k as usize]),
                first,
                opts.history_days,
            )
        });
        let mut writer = Checkpointer::new(&t.changelog, part, None, true);
        let inputs = vec![(t.cdr.clone(), 0), (t.account.clone(), 0)];
        let written = writer.write(&producer, driver.engine_mut(), inputs).await?;
        if written.subscribers != n {
            return Err(BenchError::Check(format!(
                "partition {part}: {} of {n} subscribers checkpointed",
                written.subscribers
            )));
        }
        seeded.subscribers += written.subscribers;
        seeded.records += written.records;
        seeded.bytes += written.bytes;
    }
    Ok(seeded)
}
