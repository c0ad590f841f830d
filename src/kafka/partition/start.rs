//! A partition task's first step: its engine, kept from a revoke or restored from the
//! changelog, before it reads a record.
//!
//! The restore runs on a blocking thread ([`Assigner::restore`]) while the task keeps
//! answering its control channel: a drain (the partition moves, or the service stops)
//! gives the restore up at once, a look-up finds nothing yet, and a reload is taken and
//! applied once the engine exists. The other partitions, `/metrics` and the control loop
//! never wait for it. If the checkpoint restored is not the one the inputs were started
//! at (a newer one landed after assignment, or the task is a failed one's successor), the
//! inputs move to the restored checkpoint's offsets before anything is read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{error, warn};

use crate::config::Config;

use super::super::changelog::ChangelogError;
use super::super::consumer::{self, InputConsumer};
use super::super::shared::{Control, Resume, Start};
use super::super::Error;
use crate::kafka::consumer::assign::{Assigner, Ready};

/// What a task needs to get its engine.
pub(in crate::kafka) struct Restorer {
    pub assigner: Arc<Assigner>,
    pub consumer: Arc<InputConsumer>,
    /// The input topics read, to move to the restored checkpoint.
    pub topics: Vec<String>,
    pub failures: mpsc::UnboundedSender<Error>,
}

impl Restorer {
    /// Partition `p`'s engine, or `None` if the task is to stop first (drained, or the
    /// restore failed: reported on `failures`, which stops the service).
    pub(super) async fn engine(
        &self,
        p: i32,
        resume: Resume,
        cfg: &Arc<Config>,
        rx: &mut mpsc::Receiver<Control>,
    ) -> Option<Ready> {
        let start = match resume {
            Resume::Kept(ready) => return Some(*ready),
            Resume::Restore(start) => start,
        };
        match self.restore(p, start, cfg, rx).await {
            Ok(ready) => ready,
            Err(stop) => {
                error!(partition = p, error = %stop, "readying the partition failed; stopping");
                let _ = self.failures.send(stop);
                None
            }
        }
    }

    async fn restore(
        &self,
        p: i32,
        start: Start,
        cfg: &Arc<Config>,
        rx: &mut mpsc::Receiver<Control>,
    ) -> Result<Option<Ready>, Error> {
        let cancel = Arc::new(AtomicBool::new(false));
        let job = {
            let (assigner, cfg, cancel) = (self.assigner.clone(), cfg.clone(), cancel.clone());
            tokio::task::spawn_blocking(move || assigner.restore(&cfg, p, &cancel))
        };
        tokio::pin!(job);
        let mut reload = None;
        let mut ready = loop {
            tokio::select! {
                done = &mut job => break done.map_err(|_| self.panicked())??,
                control = rx.recv() => match control {
                    Some(Control::Describe(_, reply)) => {
                        let _ = reply.send(None);
                    }
                    Some(Control::Reconfigure(next, done)) => {
                        reload = Some(next);
                        let _ = done.send(Ok(()));
                    }
                    Some(Control::Drain(_, done)) => {
                        self.give_up(p, &cancel);
                        let _ = done.send(());
                        return Ok(None);
                    }
                    None => {
                        self.give_up(p, &cancel);
                        return Ok(None);
                    }
                },
            }
        };
        if let Some(next) = reload {
            if let Err(e) = ready.worker.reconfigure(&next) {
                warn!(partition = p, error = %e, "a reload taken while restoring does not apply");
            }
        }
        let restored = ready.checkpointer.last().cloned();
        if start != Start::Assigned(restored.as_ref().map(|m| m.tag)) {
            let (consumer, topics) = (self.consumer.clone(), self.topics.clone());
            tokio::task::spawn_blocking(move || {
                consumer::rewind(&consumer, &topics, p, restored.as_ref())
            })
            .await
            .map_err(|_| self.panicked())?
            .map_err(|source| Error::Rewind {
                partition: p,
                source,
            })?;
        }
        Ok(Some(ready))
    }

    fn give_up(&self, p: i32, cancel: &AtomicBool) {
        cancel.store(true, Ordering::Relaxed);
        self.assigner.given_up(p);
    }

    fn panicked(&self) -> Error {
        Error::Changelog(ChangelogError::Panicked {
            topic: self.assigner.changelog.clone(),
        })
    }
}
