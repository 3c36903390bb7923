//! A small client for the Chrome DevTools Protocol, just what the browser test needs: it starts
//! a headless Chromium, opens tabs and sends them commands over one WebSocket, in the "flat"
//! form of the protocol (a command for a tab carries the tab's `sessionId`).
//!
//! A reader thread takes every message Chromium sends: the answer to a command goes to the
//! thread that waits for it (matched by the command's `id`), an event goes to the queue of its
//! tab. So tests in threads of their own drive their tabs at the same time. Every wait has a
//! time limit. The protocol: <https://chromedevtools.github.io/devtools-protocol/>

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use serde_json::{Value, json};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// How long a command may take (printing the whole book to PDF takes ~20 s).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long Chromium may take to start and print the address of its DevTools WebSocket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Chromium. Clones share it; when the last one is dropped, Chromium is stopped
/// (`stop`) and waited for.
#[derive(Clone)]
pub struct Browser {
    connection: Arc<Connection>,
    process: Arc<Process>,
}

struct Process {
    child: Child,
    profile: PathBuf,
    /// Keeps the thread that started Chromium alive (see `spawn`).
    _spawner: Sender<()>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        stop(self.child.id(), &self.profile);
        let _ = self.child.wait();
    }
}

/// Kills Chromium and the processes it started (on Unix its process group: renderers, the
/// network service, …), then removes its profile directory, trying again while a dying
/// process may still write to it (≤ 2 s). Safe to call at exit.
pub fn stop(pid: u32, profile: &Path) {
    #[cfg(unix)]
    // SAFETY: a plain system call. Chromium is never waited for before this, so its process
    // group id cannot have been reused.
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = pid; // (`Process::drop` kills it)
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::fs::remove_dir_all(profile).is_err() && profile.exists() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Browser {
    /// Starts `chrome` headless with `flags` and a new, empty profile (in a process group of its
    /// own), and connects to it.
    pub fn launch(chrome: &Path, flags: &[&str]) -> Result<Browser> {
        let profile = tempfile::Builder::new().prefix("chromium-").tempdir()?;
        let mut command = Command::new(chrome);
        command
            .args(flags)
            .args(["--headless", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let (mut child, spawner) =
            spawn(command).with_context(|| format!("cannot start {}", chrome.display()))?;
        let stderr = child.stderr.take().unwrap();
        // From here on, dropping `process` stops Chromium and removes the profile.
        let process = Arc::new(Process {
            child,
            profile: profile.keep(),
            _spawner: spawner,
        });
        // Chromium prints "DevTools listening on ws://…" once it listens (port 0: a free one).
        // What it prints before that explains a failure; what follows is read and dropped, so
        // that Chromium never blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut before = Vec::new();
            for line in BufReader::new(stderr).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                match line.split_once("DevTools listening on ") {
                    Some((_, url)) => {
                        let _ = tx.send(Ok(url.trim().to_owned()));
                    }
                    None if before.len() < 100 => before.push(line),
                    None => {}
                }
            }
            let _ = tx.send(Err(before.join("\n")));
        });
        let url = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(url)) => url,
            Ok(Err(output)) => bail!("Chromium exited before it listened for DevTools:\n{output}"),
            Err(_) => bail!("Chromium did not listen for DevTools within {START_TIMEOUT:?}"),
        };
        let connection = Connection::open(&url)?;
        Ok(Browser {
            connection,
            process,
        })
    }

    /// Chromium's process id.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// The profile directory Chromium uses (removed when the browser is dropped).
    pub fn profile(&self) -> &Path {
        &self.process.profile
    }

    /// The ids of the open tabs ("page" targets), such as the blank one Chromium starts with.
    pub fn tab_ids(&self) -> Result<Vec<String>> {
        let targets = self.connection.call(None, "Target.getTargets", json!({}))?;
        let targets = targets["targetInfos"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(targets
            .iter()
            .filter(|t| t["type"] == "page")
            .filter_map(|t| t["targetId"].as_str().map(str::to_owned))
            .collect())
    }

    /// Opens a new blank tab.
    pub fn new_tab(&self) -> Result<Tab> {
        let created =
            self.connection
                .call(None, "Target.createTarget", json!({ "url": "about:blank" }))?;
        let id = created["targetId"].as_str().context("no targetId")?;
        self.attach(id)
    }

    /// Takes control of the tab `target_id`, with page events (loads) turned on.
    pub fn attach(&self, target_id: &str) -> Result<Tab> {
        let params = json!({ "targetId": target_id, "flatten": true });
        let attached = self
            .connection
            .call(None, "Target.attachToTarget", params)?;
        let session_id = attached["sessionId"].as_str().context("no sessionId")?;
        let (tx, rx) = mpsc::channel();
        let mut state = self.connection.state.lock().unwrap();
        state.events.insert(session_id.to_owned(), tx);
        drop(state);
        let tab = Tab {
            connection: Arc::clone(&self.connection),
            target_id: target_id.to_owned(),
            session_id: session_id.to_owned(),
            events: Mutex::new(rx),
        };
        tab.call("Page.enable", json!({}))?;
        tab.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }))?;
        Ok(tab)
    }
}

/// Starts `command` from a thread that lives as long as the returned sender (or the process).
/// On Linux the child is killed when that thread ends (`PR_SET_PDEATHSIG` follows the thread
/// that started a process, not the process), so Chromium does not outlive the test process,
/// whatever ends it (a signal included).
fn spawn(mut command: Command) -> Result<(Child, Sender<()>)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe, and the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let (keep, kept) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.spawn());
        let _ = kept.recv(); // returns when `keep` is dropped
    });
    Ok((rx.recv()??, keep))
}

/// The WebSocket to the browser: commands go out through `writer`, and a reader thread hands
/// out what comes back (`read_messages`).
struct Connection {
    writer: Mutex<WebSocket<TcpStream>>,
    next_id: AtomicU64,
    state: Mutex<State>,
}

struct State {
    /// False once Chromium has closed the connection.
    open: bool,
    /// Where the answer to each command sent is awaited, by the command's id.
    waiting: HashMap<u64, Sender<Result<Value, String>>>,
    /// The event queue of each attached tab, by session id.
    events: HashMap<String, Sender<Value>>,
}

impl Connection {
    fn open(url: &str) -> Result<Arc<Connection>> {
        let address = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .with_context(|| format!("not a DevTools address: {url}"))?;
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        // The answers can be large (a PDF of the whole book, in base64).
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (reader, _) = tungstenite::client::client_with_config(url, stream, Some(config))
            .map_err(|e| anyhow!("WebSocket handshake with {url}: {e}"))?;
        reader.get_ref().set_read_timeout(None)?;
        // Two ends of one socket: the reader thread reads, callers write. (The reader would also
        // answer a ping; Chromium sends none.)
        let writer =
            WebSocket::from_raw_socket(reader.get_ref().try_clone()?, Role::Client, Some(config));
        let connection = Arc::new(Connection {
            writer: Mutex::new(writer),
            next_id: AtomicU64::new(1),
            state: Mutex::new(State {
                open: true,
                waiting: HashMap::new(),
                events: HashMap::new(),
            }),
        });
        let shared = Arc::clone(&connection);
        std::thread::spawn(move || read_messages(&shared, reader));
        Ok(connection)
    }

    /// Sends the command `method` (to the tab of `session`, else to the browser) and returns
    /// its result, or an error with Chromium's message.
    fn call(&self, session: Option<&str>, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = session.into();
        }
        let (tx, rx) = mpsc::channel();
        let mut state = self.state.lock().unwrap();
        ensure!(state.open, "{method}: Chromium has closed the connection");
        state.waiting.insert(id, tx);
        drop(state);
        let sent = self
            .writer
            .lock()
            .unwrap()
            .send(Message::text(command.to_string()));
        let answer = match sent {
            Ok(()) => rx.recv_timeout(COMMAND_TIMEOUT),
            Err(e) => Ok(Err(format!("cannot send it: {e}"))),
        };
        self.state.lock().unwrap().waiting.remove(&id);
        match answer {
            Ok(result) => result.map_err(|e| anyhow!("{method}: {e}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("{method}: no answer from Chromium within {COMMAND_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                bail!("{method}: Chromium closed the connection")
            }
        }
    }
}

/// The reader thread: hands each answer to the caller waiting for it, and each event of a tab
/// to the tab's queue, until the connection closes.
fn read_messages(connection: &Connection, mut socket: WebSocket<TcpStream>) {
    while let Ok(message) = socket.read() {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(mut message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let mut state = connection.state.lock().unwrap();
        if let Some(id) = message["id"].as_u64() {
            let Some(caller) = state.waiting.remove(&id) else {
                continue; // it gave up waiting
            };
            let result = match message.get("error") {
                Some(error) => Err(match (error["message"].as_str(), error["data"].as_str()) {
                    (Some(text), Some(data)) => format!("{text} ({data})"),
                    (Some(text), None) => text.to_owned(),
                    _ => error.to_string(),
                }),
                None => Ok(message["result"].take()),
            };
            let _ = caller.send(result);
        } else if let Some(session) = message["sessionId"].as_str()
            && let Some(queue) = state.events.get(session)
        {
            let _ = queue.send(message);
        }
    }
    // Chromium has gone: whoever waits learns it now (the senders are dropped).
    let mut state = connection.state.lock().unwrap();
    state.open = false;
    state.waiting.clear();
    state.events.clear();
}

/// A tab attached to the client. Only one thread at a time should wait for its events (the
/// browser test gives each tab to one test at a time).
pub struct Tab {
    connection: Arc<Connection>,
    target_id: String,
    session_id: String,
    /// The tab's events not yet looked at.
    events: Mutex<Receiver<Value>>,
}

impl Tab {
    /// The tab's target id, which stays the same while it is open.
    pub fn target_id(&self) -> &str {
        &self.target_id
    }

    /// Sends the command `method` with `params` to the tab and returns its result.
    pub fn call(&self, method: &str, params: Value) -> Result<Value> {
        self.connection.call(Some(&self.session_id), method, params)
    }

    /// Opens `url` and returns once the new document has loaded (its `load` event), or an
    /// error after `timeout`. It does not wait for the network to be idle.
    pub fn navigate(&self, url: &str, timeout: Duration) -> Result<()> {
        let events = self.events.lock().unwrap();
        while events.try_recv().is_ok() {} // those of the pages before
        let navigated = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = navigated["errorText"].as_str() {
            bail!("{url}: {error}");
        }
        // A new document has a loader of its own; a link to another part of the open page has none.
        let Some(loader) = navigated["loaderId"].as_str() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        loop {
            let event = events
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| anyhow!("{url} did not load within {timeout:?}"))?;
            let params = &event["params"];
            if event["method"] == "Page.lifecycleEvent"
                && params["name"] == "load"
                && params["loaderId"] == loader
            {
                return Ok(());
            }
        }
    }

    /// Evaluates the JavaScript expression `js` in the page, awaiting it if it is a promise.
    /// Returns what `Runtime.evaluate` does: the value as `result.value` (when it is one that
    /// JSON can hold), and `exceptionDetails` when it threw.
    pub fn evaluate(&self, js: &str) -> Result<Value> {
        let params = json!({ "expression": js, "awaitPromise": true, "returnByValue": true });
        self.call("Runtime.evaluate", params)
    }

    /// Presses and releases the key of a lower-case letter: `keyDown` with the letter as its
    /// text (which types it, as a `keypress` would), then `keyUp`.
    pub fn press_key(&self, letter: char) -> Result<()> {
        ensure!(
            letter.is_ascii_lowercase(),
            "not a lower-case letter: {letter}"
        );
        let upper = letter.to_ascii_uppercase();
        for kind in ["keyDown", "keyUp"] {
            let event = json!({
                "type": kind,
                "key": letter.to_string(),
                "code": format!("Key{upper}"),
                "text": letter.to_string(),
                "windowsVirtualKeyCode": upper as u32,
                "nativeVirtualKeyCode": upper as u32,
            });
            self.call("Input.dispatchKeyEvent", event)?;
        }
        Ok(())
    }

    /// Inserts `text` where the focus is, as an input method commits it (no key events).
    pub fn insert_text(&self, text: &str) -> Result<()> {
        self.call("Input.insertText", json!({ "text": text }))?;
        Ok(())
    }

    /// Prints the page to PDF (`Page.printToPDF` with `options`) and returns the file.
    pub fn print_to_pdf(&self, options: Value) -> Result<Vec<u8>> {
        let printed = self.call("Page.printToPDF", options)?;
        let data = printed["data"]
            .as_str()
            .context("Page.printToPDF: no data")?;
        Ok(base64::prelude::BASE64_STANDARD.decode(data)?)
    }

    /// Closes the tab.
    pub fn close(&self) -> Result<()> {
        let params = json!({ "targetId": self.target_id });
        self.connection.call(None, "Target.closeTarget", params)?;
        Ok(())
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        if let Ok(mut state) = self.connection.state.lock() {
            state.events.remove(&self.session_id);
        }
    }
}
