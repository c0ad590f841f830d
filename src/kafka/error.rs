//! The adapter's failures, sorted by what is done about them. Every Kafka failure gets one
//! of three answers, named by [`Action`]:
//!
//! - **retry**: librdkafka reconnects, the publisher sends again, and `/readyz` says what
//!   is wrong meanwhile (a broker down, a full queue, a lost delivery report);
//! - **reject**: this one record cannot be sent however often it is tried (too large, an
//!   unknown topic); a dead letter is given up, a ticket stops the service rather than be
//!   lost;
//! - **stop**: no retry mends it (refused credentials, a missing ACL, a fenced producer, a
//!   corrupt changelog). The service stops with a non-zero exit and an [`Error`] whose
//!   message says what to fix before the restart; the last complete checkpoint stays the
//!   restore point, so the restart publishes what was missing.
//!
//! [`action`] sorts a librdkafka error by its code, one table for the consumer and the
//! producer. Record-level problems in the input (undecodable, invalid, late) are not
//! failures of the adapter: the driver sorts them ([`crate::driver::Reason`]) and they go
//! to the dead-letter topic.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::changelog::ChangelogError;
use super::producer::Refused;
use crate::config::ConfigError;

/// What is done about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Retry,
    Reject,
    Stop,
}

/// Sorts a librdkafka error by its code. An error with no code (a delivery report lost
/// with the producer) is retried.
pub fn action(e: &KafkaError) -> Action {
    use RDKafkaErrorCode as C;
    if let KafkaError::MessageConsumptionFatal(_) = e {
        return Action::Stop;
    }
    let Some(code) = e.rdkafka_error_code() else {
        return Action::Retry;
    };
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::MessageBatchTooLarge
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::InvalidTopic
        | C::InvalidMessage
        | C::InvalidRecord
        | C::InvalidTimestamp
        | C::UnsupportedForMessageFormat
        | C::InvalidArgument => Action::Reject,
        C::Fatal
        | C::Fenced
        | C::ProducerFenced
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::DelegationTokenAuthorizationFailed
        | C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::InvalidRequiredAcks
        | C::UnsupportedCompressionType => Action::Stop,
        _ => Action::Retry,
    }
}

/// Why the service stopped. Each variant is a stop; retries and rejections are answered
/// where they happen and never reach it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka client: {0}")]
    Client(#[from] KafkaError),
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error(
        "topics `{a}` ({a_count} partitions) and `{b}` ({b_count} partitions) are not co-partitioned: \
         churnwatch needs the same partition count, keyed by subscriber, so each subscriber's \
         records meet in one partition"
    )]
    NotCoPartitioned {
        a: String,
        a_count: usize,
        b: String,
        b_count: usize,
    },
    /// A ticket the broker refuses for good, or a fatal producer error.
    #[error(transparent)]
    Publish(#[from] Refused),
    /// A checkpoint that could not be written or a restore that failed.
    #[error(transparent)]
    Changelog(#[from] ChangelogError),
    /// A consumer error no retry mends: bad credentials, a missing ACL, a fatal client
    /// error.
    #[error(
        "the consumer cannot go on ({code}): {reason}; check the credentials (sasl.*) and the \
         ACLs on the group and the input topics, then restart"
    )]
    Consumer {
        code: RDKafkaErrorCode,
        reason: String,
    },
    /// librdkafka would not give an input partition a queue of its own, so its records
    /// would reach the consumer's shared queue, which no partition task reads.
    #[error(
        "input `{topic}` partition {partition} has no queue of its own (librdkafka refused to \
         split it off); stopping rather than reading it a second way"
    )]
    Unsplit { topic: String, partition: i32 },
    /// The inputs could not be moved to the checkpoint a partition's engine was restored
    /// from: reading them would skip or repeat records.
    #[error("moving partition {partition}'s inputs to its restored checkpoint failed: {source}")]
    Rewind { partition: i32, source: KafkaError },
    /// A partition task failed again and again: restarting it in this process does not help.
    #[error("partition {partition}'s task failed {restarts} times in {minutes} minutes; stopping")]
    CrashLoop {
        partition: i32,
        restarts: usize,
        minutes: u64,
    },
    /// The thread that polls the consumer could not be started.
    #[error("starting the consumer's polling thread: {0}")]
    Poller(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn refused_credentials_and_acls_stop_and_outages_are_retried() {
        for code in [
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::TopicAuthorizationFailed,
            C::GroupAuthorizationFailed,
            C::ProducerFenced,
            C::Fatal,
        ] {
            assert_eq!(action(&KafkaError::Global(code)), Action::Stop, "{code:?}");
        }
        for code in [
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::AutoOffsetReset,
            C::RequestTimedOut,
            C::QueueFull,
        ] {
            assert_eq!(action(&KafkaError::Global(code)), Action::Retry, "{code:?}");
        }
        let any = KafkaError::MessageConsumptionFatal(C::Unknown);
        assert_eq!(action(&any), Action::Stop);
        assert_eq!(action(&KafkaError::Canceled), Action::Retry);
    }

    #[test]
    fn a_record_the_broker_cannot_take_is_rejected() {
        let big = KafkaError::MessageProduction(C::MessageSizeTooLarge);
        assert_eq!(action(&big), Action::Reject);
        let gone = KafkaError::MessageProduction(C::UnknownTopicOrPartition);
        assert_eq!(action(&gone), Action::Reject);
    }
}
