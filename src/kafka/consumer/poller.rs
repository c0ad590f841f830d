//! The consumer's own queue, polled on a thread of its own.
//!
//! Records never arrive there (each input partition's queue is split off, see
//! [`super::queues`]), but librdkafka's rebalance callbacks run from that poll: on
//! assignment the checkpoint markers are read, on revocation the partition tasks are
//! drained and waited for. On a thread of its own they hold up neither the control loop
//! (shutdown, reloads, health) nor a runtime worker, and they may block as long as they
//! need without asking the runtime to move its tasks away. Errors not tied to a partition
//! come back to the control loop through a channel.

use std::sync::Arc;
use std::thread::JoinHandle;

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use tokio::sync::{mpsc, oneshot};

use super::InputConsumer;

/// What the consumer's own queue yielded.
#[derive(Debug)]
pub enum Polled {
    /// A record: only one whose queue was not split off gets here (a bug, see
    /// [`crate::kafka::Error::Unsplit`]).
    Record { topic: String, partition: i32 },
    /// An error not tied to a record.
    Error(KafkaError),
}

/// The polling thread; stopped when dropped.
pub struct Poller {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts polling `consumer`; what it yields comes out of the receiver.
    pub fn start(
        consumer: Arc<InputConsumer>,
    ) -> std::io::Result<(Poller, mpsc::UnboundedReceiver<Polled>)> {
        let (out, polled) = mpsc::unbounded_channel();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("churnwatch-consumer".into())
            .spawn(move || loop {
                // Not a tokio runtime: the callbacks block this thread, and only this one.
                let next = futures_executor::block_on(async {
                    tokio::select! {
                        biased;
                        _ = &mut stopped => None,
                        m = consumer.recv() => Some(match m {
                            Ok(m) => Polled::Record {
                                topic: m.topic().to_string(),
                                partition: m.partition(),
                            },
                            Err(e) => Polled::Error(e),
                        }),
                    }
                });
                let Some(p) = next else { return };
                if out.send(p).is_err() {
                    return;
                }
            })?;
        let poller = Poller {
            stop: Some(stop),
            thread: Some(thread),
        };
        Ok((poller, polled))
    }

    /// Stops the thread and waits for it (a rebalance callback under way finishes first).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
