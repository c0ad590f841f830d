//! Whether the consumer reaches a broker, read from librdkafka's own statistics. A probe
//! of our own (a metadata request every few seconds) would be a blocking call and one
//! more request per instance on the brokers; librdkafka already tracks each connection's
//! state and reports it with the statistics the stall watch reads, every
//! `statistics.interval.ms`.

use rdkafka::statistics::Statistics;

/// `Ok` if at least one broker connection is up, else why not: each known broker with
/// its connection state, as `/readyz` shows it. A bootstrap address counts as a broker
/// until the cluster's own are known.
pub(super) fn reachable<'a>(
    brokers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let mut down = Vec::new();
    for (name, state) in brokers {
        if state == "UP" {
            return Ok(());
        }
        down.push(format!("{name} {state}"));
    }
    if down.is_empty() {
        return Err("no broker known".into());
    }
    down.sort();
    Err(format!("no broker connection up ({})", down.join(", ")))
}

/// The `(name, state)` of every broker connection in a statistics sample, leaving out
/// librdkafka's logical brokers (the group coordinator's handle) and its internal one,
/// which are no connection to a broker.
pub(super) fn connections(stats: &Statistics) -> impl Iterator<Item = (&str, &str)> {
    stats
        .brokers
        .values()
        .filter(|b| b.source != "logical" && b.source != "internal")
        .map(|b| (b.name.as_str(), b.state.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_up_is_enough() {
        let brokers = [("b1:9092/1", "DOWN"), ("b2:9092/2", "UP")];
        assert_eq!(reachable(brokers), Ok(()));
    }

    #[test]
    fn every_connection_down_names_each_with_its_state() {
        let brokers = [("b2:9092/2", "CONNECT"), ("b1:9092/1", "DOWN")];
        assert_eq!(
            reachable(brokers),
            Err("no broker connection up (b1:9092/1 DOWN, b2:9092/2 CONNECT)".into())
        );
        assert_eq!(reachable([]), Err("no broker known".into()));
    }

    #[test]
    fn logical_and_internal_brokers_are_left_out() {
        let broker = |name: &str, source: &str, state: &str| rdkafka::statistics::Broker {
            name: name.into(),
            source: source.into(),
            state: state.into(),
            ..Default::default()
        };
        let mut stats = Statistics::default();
        for b in [
            broker("GroupCoordinator", "logical", "UP"),
            broker(":0/internal", "internal", "UP"),
            broker("b:9092/1", "learned", "DOWN"),
        ] {
            stats.brokers.insert(b.name.clone(), b);
        }
        assert_eq!(
            reachable(connections(&stats)),
            Err("no broker connection up (b:9092/1 DOWN)".into())
        );
    }
}
