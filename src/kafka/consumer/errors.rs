//! Which consumer errors stop the service. librdkafka retries a broker that is down or a
//! connection that broke by itself, so those only make the service not ready for a while;
//! a refused login or a missing ACL stays refused however often it retries, and the
//! partitions would go unread with no sign but the lag. Those stop the service with a
//! message that says what to check, and the process exits non-zero.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::error::{action, Action};

/// The code of a consumer error that retrying cannot mend (authentication, authorization,
/// a fatal client error), or `None` for one librdkafka retries by itself. A consumer has
/// no record to reject: a topic or partition it cannot find yet is waited for.
pub(crate) fn fatal_code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match action(e) {
        Action::Stop => Some(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fatal)),
        Action::Retry | Action::Reject => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RDKafkaErrorCode as C;

    #[test]
    fn refused_credentials_and_acls_stop_and_outages_do_not() {
        for code in [
            C::SaslAuthenticationFailed,
            C::Authentication,
            C::TopicAuthorizationFailed,
            C::GroupAuthorizationFailed,
            C::Fatal,
        ] {
            assert_eq!(fatal_code(&KafkaError::Global(code)), Some(code));
            assert_eq!(
                fatal_code(&KafkaError::MessageConsumption(code)),
                Some(code)
            );
        }
        for code in [
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::AutoOffsetReset,
            C::RequestTimedOut,
            C::UnknownTopicOrPartition,
        ] {
            assert_eq!(fatal_code(&KafkaError::Global(code)), None, "{code:?}");
            assert_eq!(fatal_code(&KafkaError::MessageConsumption(code)), None);
        }
        let any = KafkaError::MessageConsumptionFatal(C::Unknown);
        assert_eq!(fatal_code(&any), Some(C::Unknown));
    }
}
