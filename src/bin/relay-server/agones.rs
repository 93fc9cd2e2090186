//! Agones integration (feature `agones`, flag `--agones`): the relay server as an Agones
//! GameServer. The SDK is asynchronous (gRPC over tonic); the server's loop is not. So the SDK
//! lives on a thread of its own with a single-threaded tokio runtime, and the loop hands it
//! calls through a channel; no call ever blocks the loop.
//!
//! What the loop reports, and when:
//! - `Ready` once the server listens (Agones may then allocate it);
//! - `Health` every [`HEALTH_EVERY`] from the loop itself, so a loop that stalls stops the pings
//!   and Agones marks the GameServer Unhealthy;
//! - the player count as the label `players` (Agones stores it as `agones.dev/sdk-players`, which
//!   allocation selectors can match), whenever it changes;
//! - `Shutdown` when the process ends: after a drain, after `--exit-when-empty`, after a second
//!   signal. Not at the start of a drain, because Agones answers Shutdown by deleting the pod,
//!   and the SIGTERM that follows would cut the drain short.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the loop tells Agones it is healthy (Agones' default health period is 5 s).
pub const HEALTH_EVERY: Duration = Duration::from_secs(2);

/// How long the loop waits at exit for the Shutdown call to reach the SDK server.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// A call for the SDK thread.
enum Call {
    Ready,
    Health,
    Players(usize),
    Shutdown,
}

/// The handle the server's loop holds.
pub struct Agones {
    calls: mpsc::UnboundedSender<Call>,
    /// The SDK thread's failures (it could not reach the SDK server): the loop ends on one.
    failures: std_mpsc::Receiver<String>,
    /// Acknowledges the Shutdown call.
    shut_down: std_mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    last_health: Option<Instant>,
    players: Option<usize>,
}

impl Agones {
    /// Starts the SDK thread. It connects to the SDK server on localhost (port
    /// `AGONES_SDK_GRPC_PORT`, default 9357, as the SDK reads it); calls made before the
    /// connection is up wait for it.
    pub fn start() -> Result<Agones, String> {
        let (calls, mut queue) = mpsc::unbounded_channel::<Call>();
        let (fail_tx, failures) = std_mpsc::channel::<String>();
        let (done_tx, shut_down) = std_mpsc::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Agones SDK runtime: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("agones".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let port = std::env::var("AGONES_SDK_GRPC_PORT")
                        .unwrap_or_else(|_| "9357".to_string());
                    let mut sdk = match agones::Sdk::new(None, None).await {
                        Ok(sdk) => sdk,
                        Err(e) => {
                            let _ = fail_tx.send(format!(
                                "cannot reach the Agones SDK server on localhost:{port}: {e}"
                            ));
                            return;
                        }
                    };
                    log::info!("agones: connected to the SDK server on localhost:{port}");
                    let health = sdk.health_check();
                    while let Some(call) = queue.recv().await {
                        let (what, result) = match call {
                            Call::Ready => ("Ready", sdk.ready().await),
                            Call::Health => {
                                // A full channel means pings are already waiting: skip one.
                                let _ = health.try_send(());
                                continue;
                            }
                            Call::Players(n) => (
                                "SetLabel players",
                                sdk.set_label("players", n.to_string()).await,
                            ),
                            Call::Shutdown => {
                                let result = sdk.shutdown().await;
                                if let Err(e) = &result {
                                    log::error!("agones: Shutdown failed: {e}");
                                } else {
                                    log::info!("agones: Shutdown sent");
                                }
                                let _ = done_tx.send(());
                                return;
                            }
                        };
                        match result {
                            Ok(()) if what == "Ready" => log::info!("agones: Ready sent"),
                            Ok(()) => log::debug!("agones: {what} sent"),
                            Err(e) => log::warn!("agones: {what} failed: {e}"),
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot start the Agones thread: {e}"))?;
        Ok(Agones {
            calls,
            failures,
            shut_down,
            thread: Some(thread),
            last_health: None,
            players: None,
        })
    }

    /// Marks the GameServer Ready (the server listens).
    pub fn ready(&mut self) {
        let _ = self.calls.send(Call::Ready);
    }

    /// Called on every turn of the loop: a health ping every [`HEALTH_EVERY`], the player count
    /// when it changed. Returns the SDK thread's failure, if it had one.
    pub fn tick(&mut self, players: usize) -> Result<(), String> {
        if let Ok(failure) = self.failures.try_recv() {
            return Err(failure);
        }
        if self
            .last_health
            .map_or(true, |t| t.elapsed() >= HEALTH_EVERY)
        {
            let _ = self.calls.send(Call::Health);
            self.last_health = Some(Instant::now());
        }
        if self.players != Some(players) {
            let _ = self.calls.send(Call::Players(players));
            self.players = Some(players);
        }
        Ok(())
    }

    /// Tells Agones the server is shutting down, and waits (a bounded time) for the call to go.
    pub fn shutdown(mut self) {
        let _ = self.calls.send(Call::Shutdown);
        if self.shut_down.recv_timeout(SHUTDOWN_WAIT).is_err() {
            log::warn!(
                "agones: Shutdown not confirmed within {} s",
                SHUTDOWN_WAIT.as_secs()
            );
            // The thread may still wait for the SDK server: leave it to the process exit.
            return;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
