//! Payload templates run in a sandbox: a few worker processes (`portal template-worker`), each
//! under a memory limit, with a deadline per render after which the worker is killed.
//!
//! A template is the partner's code. minijinja's fuel bounds how many instructions a render
//! runs, not what one instruction costs: `"x" * 100000000` is one instruction, and a string
//! joined to itself doubles with each `~`. In the portal's own process such a render could take
//! the memory of every partner (the process aborts) or hold an async thread for minutes. In a
//! worker it can only fail: the worker's allocations stop at [`WORKER_MEMORY`] (the worker
//! aborts, the render fails with "used more than 64 MiB"), and a render that has used
//! [`RENDER_DEADLINE`] of processor time is ended by its worker's own timer and fails with "took
//! longer than 100 ms". Processor time, not time on the clock: on a busy machine a render that
//! waits for a core is not the template's fault. A worker that has not answered after
//! [`WALL_DEADLINE`] (starved, or stuck) is killed too, and that render, like one that found
//! no free worker, is [`RenderError::Unavailable`]: no fault of the template, so a delivery
//! waits and tries again without counting an attempt.
//! Saving, previewing, Test Webhook and every delivery render here and nowhere else.
//!
//! Workers are the portal's own binary (one file deploys), started on first use and kept for
//! the next render; at most [`workers`] render at once, and one partner holds at most half of
//! them, so a partner whose templates always hit the deadline slows its own deliveries only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};

use crate::domain::{EventBody, FieldError, PartnerId, PayloadTemplate, TemplateError};

/// The argument that makes the portal binary a template worker.
pub const WORKER_ARG: &str = "template-worker";
/// Most processor time a render may use; then its worker's timer (`ITIMER_PROF`) ends it and
/// the render fails.
pub const RENDER_DEADLINE: Duration = Duration::from_millis(100);
/// Longest a render may take on the clock, whatever its processor time; then its worker is
/// killed and the render is [`RenderError::Unavailable`].
pub const WALL_DEADLINE: Duration = Duration::from_secs(1);
/// Memory a worker may allocate (its data segment and anonymous mappings, `RLIMIT_DATA`); an
/// allocation past it aborts the worker, not the portal.
pub const WORKER_MEMORY: u64 = 64 * 1024 * 1024;
/// Longest wait for a free worker before a render is refused as busy.
const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Longest a new worker may take to start.
const START_WAIT: Duration = Duration::from_secs(10);

/// Workers rendering at once: one per core, at least two.
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).max(2)
}

/// The sandbox; cheap to clone, shared by every request and the dispatcher.
#[derive(Clone)]
pub struct TemplateSandbox {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TemplateSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateSandbox").field("program", &self.inner.program).finish_non_exhaustive()
    }
}

struct Inner {
    /// The portal binary, started with [`WORKER_ARG`].
    program: PathBuf,
    /// Renders at once, all partners together.
    slots: Semaphore,
    /// Renders at once per partner, and who waits for one.
    per_partner: Mutex<HashMap<PartnerId, usize>>,
    partner_freed: Notify,
    /// Most renders one partner may have at once.
    partner_cap: usize,
    /// Workers started and waiting for a render.
    idle: Mutex<Vec<Worker>>,
}

/// Why a render gave no body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template's own doing: it does not render, or it broke the time or memory budget.
    #[error("{0}")]
    Template(#[from] TemplateError),
    /// The sandbox could not render it now (every worker busy, none would start, or the
    /// machine too busy to finish in time); nobody's fault, worth trying again shortly.
    #[error("{0}")]
    Unavailable(#[from] Unavailable),
}

/// The sandbox could not take a render now; the words say why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// One render asked of a worker.
#[derive(Serialize, Deserialize)]
struct Job {
    template: String,
    event: EventBody,
}

/// A worker's answer.
#[derive(Serialize, Deserialize)]
enum Answer {
    Body(String),
    Refused(String),
}

/// A worker process and its pipes. Dropped, it is killed and reaped.
struct Worker {
    child: Arc<Mutex<Child>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    /// Starts a worker and waits for it to say it is ready (its memory limit set).
    fn start(program: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(program);
        command.arg(WORKER_ARG).env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        // SAFETY: the closure runs in the forked child before `exec`; it allocates nothing and
        // calls only setrlimit, which is async-signal-safe and changes only the child's limits.
        unsafe { command.pre_exec(limit_memory) };
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut worker = Self { child: Arc::new(Mutex::new(child)), stdin, stdout };
        let mut line = String::new();
        worker.stdout.read_line(&mut line)?;
        if line.trim_end() != "ready" {
            return Err(std::io::Error::other(format!("the template worker did not start: {line:?}")));
        }
        Ok(worker)
    }

    /// Sends one job and reads its answer; an error means the worker is gone.
    fn exchange(&mut self, job: &str) -> std::io::Result<Answer> {
        self.stdin.write_all(job.as_bytes())?;
        self.stdin.flush()?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        serde_json::from_str(&line).map_err(std::io::Error::other)
    }

    /// Kills the worker (when it is still there) and says how it ended.
    fn end(&self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.end();
    }
}

/// Kills a worker whose answer nobody waits for any more: the deadline passed, or the request
/// that asked for the render went away (a client that disconnects drops its handler's future).
/// Without it a dropped render would keep its worker running, with a place no longer counted.
struct KillUnlessAnswered(Option<Arc<Mutex<Child>>>);

impl Drop for KillUnlessAnswered {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner).kill();
        }
    }
}

/// Gives back a partner's render place when dropped.
struct PartnerPlace<'a> {
    inner: &'a Inner,
    partner: PartnerId,
}

impl Drop for PartnerPlace<'_> {
    fn drop(&mut self) {
        let mut counts = self.inner.per_partner.lock().expect("not poisoned");
        if let Some(n) = counts.get_mut(&self.partner) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.partner);
            }
        }
        drop(counts);
        self.inner.partner_freed.notify_waiters();
    }
}

impl TemplateSandbox {
    /// A sandbox whose workers are `program` (the portal binary) started with [`WORKER_ARG`].
    pub fn new(program: PathBuf) -> Self {
        let slots = workers();
        Self {
            inner: Arc::new(Inner {
                program,
                slots: Semaphore::new(slots),
                per_partner: Mutex::default(),
                partner_freed: Notify::new(),
                partner_cap: (slots / 2).max(1),
                idle: Mutex::default(),
            }),
        }
    }

    /// Renders `template` for `event` on behalf of `partner`: the body, or why not (a template
    /// error, the deadline, the memory limit; or the sandbox unavailable now).
    pub async fn render(
        &self,
        partner: &PartnerId,
        template: &PayloadTemplate,
        event: &EventBody,
    ) -> Result<String, RenderError> {
        let job = Job { template: template.as_str().to_owned(), event: event.clone() };
        let mut line = serde_json::to_string(&job).map_err(|e| TemplateError(e.to_string()))?;
        line.push('\n');
        let busy = || Unavailable("the template sandbox is busy; try again in a moment".into());
        let started = tokio::time::Instant::now();
        let _place = tokio::time::timeout(QUEUE_WAIT, self.partner_place(partner)).await.map_err(|_| busy())?;
        let _slot = tokio::time::timeout(QUEUE_WAIT.saturating_sub(started.elapsed()), self.inner.slots.acquire())
            .await
            .map_err(|_| busy())?
            .expect("the semaphore is never closed");
        let idle = self.inner.idle.lock().expect("not poisoned").pop();
        let mut worker = match idle {
            Some(worker) => worker,
            None => {
                let program = self.inner.program.clone();
                let starting = tokio::task::spawn_blocking(move || Worker::start(&program));
                match tokio::time::timeout(START_WAIT, starting).await {
                    Ok(Ok(Ok(worker))) => worker,
                    outcome => {
                        let why = match outcome {
                            Ok(Ok(Err(e))) => e.to_string(),
                            Ok(Err(e)) => e.to_string(),
                            _ => format!("it did not start within {START_WAIT:?}"),
                        };
                        let program = self.inner.program.display();
                        tracing::error!(%program, why, "could not start a template worker");
                        return Err(
                            Unavailable("the template sandbox could not start; the operator is told".into()).into()
                        );
                    }
                }
            }
        };
        let mut unanswered = KillUnlessAnswered(Some(worker.child.clone()));
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let answer = worker.exchange(&line).map_err(|_| worker.end());
            // When nobody waits any more (the deadline passed), the worker is dropped: killed.
            let _ = answer_tx.send((worker, answer));
        });
        match tokio::time::timeout(WALL_DEADLINE, answer_rx).await {
            Ok(Ok((worker, Ok(answer)))) => {
                unanswered.0 = None;
                self.inner.idle.lock().expect("not poisoned").push(worker);
                match answer {
                    Answer::Body(body) => Ok(body),
                    Answer::Refused(why) => Err(TemplateError(why).into()),
                }
            }
            Ok(Ok((_, Err(status)))) => {
                use std::os::unix::process::ExitStatusExt;
                tracing::info!(partner = %partner, ?status, "a template worker ended during a render");
                Err(match status.and_then(|s| s.signal()) {
                    // The worker's processor-time timer went off.
                    Some(libc::SIGPROF) => {
                        TemplateError(format!("took longer than {} ms to render", RENDER_DEADLINE.as_millis())).into()
                    }
                    // An allocation past the limit aborts the worker (Rust's answer to out of memory).
                    Some(libc::SIGABRT) => TemplateError(format!(
                        "used more than {} MiB of memory while rendering",
                        WORKER_MEMORY / (1024 * 1024)
                    ))
                    .into(),
                    Some(_) => TemplateError("crashed the template sandbox while rendering".into()).into(),
                    // It exited on its own (it could not arm its timer): the sandbox's fault.
                    None => Unavailable("the template sandbox failed; the operator is told".into()).into(),
                })
            }
            Ok(Err(_)) => Err(Unavailable("the template sandbox failed; the operator is told".into()).into()),
            Err(_) => {
                drop(unanswered); // kills the worker
                tracing::warn!(partner = %partner, "a template worker did not answer in time; the machine is busy");
                Err(Unavailable(format!(
                    "the template sandbox did not answer within {} s; the portal is busy",
                    WALL_DEADLINE.as_secs()
                ))
                .into())
            }
        }
    }

    /// Checks that a template renders JSON for the sample event (what saving a webhook asks):
    /// `Ok(Err(_))` is the field error of `payloadTemplate` when it doesn't, `Err(_)` a sandbox
    /// that could not tell now.
    pub async fn check(
        &self,
        partner: &PartnerId,
        template: Option<&PayloadTemplate>,
    ) -> Result<Result<(), FieldError>, Unavailable> {
        let Some(template) = template else { return Ok(Ok(())) };
        match self.render(partner, template, &EventBody::sample()).await {
            Ok(_) => Ok(Ok(())),
            Err(RenderError::Template(e)) => Ok(Err(FieldError::new("payloadTemplate", e.0))),
            Err(RenderError::Unavailable(e)) => Err(e),
        }
    }

    /// Waits for one of `partner`'s render places.
    async fn partner_place(&self, partner: &PartnerId) -> PartnerPlace<'_> {
        loop {
            let freed = self.inner.partner_freed.notified();
            {
                let mut counts = self.inner.per_partner.lock().expect("not poisoned");
                let taken = counts.entry(partner.clone()).or_default();
                if *taken < self.inner.partner_cap {
                    *taken += 1;
                    return PartnerPlace { inner: &self.inner, partner: partner.clone() };
                }
            }
            freed.await;
        }
    }
}

/// Arms (`Some`) or disarms (`None`) this process's processor-time timer: when `ITIMER_PROF`
/// runs out the kernel sends `SIGPROF`, whose default action ends the process.
fn processor_timer(limit: Option<Duration>) -> std::io::Result<()> {
    let limit = limit.unwrap_or_default();
    let value =
        libc::timeval { tv_sec: limit.as_secs() as libc::time_t, tv_usec: limit.subsec_micros() as libc::suseconds_t };
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: value };
    // SAFETY: setitimer reads the struct it is given and changes only this process's timer; the
    // old value is not asked for (null).
    if unsafe { libc::setitimer(libc::ITIMER_PROF, &timer, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Limits this process's memory to [`WORKER_MEMORY`] (`RLIMIT_DATA`: its data segment and
/// private writable mappings). The portal calls it in a new worker between `fork` and `exec`,
/// so the limit holds from the worker's first instruction: an allocator that maps its arenas
/// as it starts (mimalloc, the portal's) would otherwise hold them before the worker's own
/// `main` could set a limit, and allocate inside them unchecked.
fn limit_memory() -> std::io::Result<()> {
    let limit = libc::rlimit { rlim_cur: WORKER_MEMORY as libc::rlim_t, rlim_max: WORKER_MEMORY as libc::rlim_t };
    // SAFETY: setrlimit reads the struct it is given and changes only this process's limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The worker's whole life (`portal template-worker`): limit its own memory, say "ready", then
/// render each job read from standard input, each under [`RENDER_DEADLINE`] of processor time,
/// and answer on standard output, one JSON line each, until standard input closes. Runs before
/// any async runtime or database is set up.
pub fn worker_main() -> ExitCode {
    // The portal set the limit before this program started (see [`limit_memory`]); a worker
    // started some other way sets it here.
    if let Err(e) = limit_memory() {
        eprintln!("template worker: could not limit its memory: {e}");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Job>(&line) {
            Ok(job) => {
                if let Err(e) = processor_timer(Some(RENDER_DEADLINE)) {
                    eprintln!("template worker: could not set its timer: {e}");
                    return ExitCode::FAILURE;
                }
                let rendered = PayloadTemplate::from_trusted(job.template).render_unguarded(&job.event);
                if processor_timer(None).is_err() {
                    return ExitCode::FAILURE;
                }
                match rendered {
                    Ok(body) => Answer::Body(body),
                    Err(e) => Answer::Refused(e.0),
                }
            }
            Err(e) => Answer::Refused(format!("the job could not be read: {e}")),
        };
        let written = serde_json::to_writer(&mut out, &answer).map_err(std::io::Error::other);
        if written.and_then(|()| writeln!(out)).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}
