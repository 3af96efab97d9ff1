//! Writes that callers hand to one task, which writes whatever has queued up together: the
//! dispatcher's recorder (finished attempts) and the API's [`Publisher`](super::events::Publisher)
//! (events) both run this loop.

use tokio::sync::{mpsc, oneshot};

/// One item to write, and where to tell its caller what became of it.
pub type Job<T, R> = (T, oneshot::Sender<anyhow::Result<R>>);

/// A write under way: one result per item, in order. Boxed, so the loop can run in a spawned
/// task whatever borrows the write holds.
pub type Written<'a, R> = std::pin::Pin<Box<dyn Future<Output = anyhow::Result<Vec<R>>> + Send + 'a>>;

/// Takes the jobs as they come and writes each batch of whatever has queued up, up to `most`,
/// with one call of `write` (which answers one result per item, in order); each caller hears
/// back once its batch is written. When a batch fails, its items are written one by one, so
/// one bad item can't fail the others. Ends when every sender is gone and the queue is empty.
pub async fn write_grouped<T, R>(
    mut jobs: mpsc::Receiver<Job<T, R>>,
    most: usize,
    what: &'static str,
    write: impl for<'a> Fn(&'a [T]) -> Written<'a, R>,
) {
    let mut batch = Vec::with_capacity(most);
    while jobs.recv_many(&mut batch, most).await > 0 {
        let (items, replies): (Vec<T>, Vec<_>) = batch.drain(..).unzip();
        let started = std::time::Instant::now();
        let written = write(&items).await;
        tracing::debug!(what, n = items.len(), ms = started.elapsed().as_secs_f64() * 1000.0, "wrote a batch");
        match written {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) if items.len() > 1 => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    what,
                    n = items.len(),
                    "a batch failed; writing it one by one"
                );
                for (item, reply) in items.iter().zip(replies) {
                    let one = write(std::slice::from_ref(item)).await;
                    let _ = reply.send(one.and_then(|mut answers| {
                        answers.pop().ok_or_else(|| anyhow::anyhow!("a write of one item answered nothing"))
                    }));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!("{e:#}")));
                }
            }
        }
    }
}
