//! Starts the real `cloudgate serve` on a free port with its own data dir,
//! and stops it on drop (SIGTERM, then SIGKILL). One shared server serves
//! the tests that only need isolation by user name; restart and kill tests
//! start their own.

#![allow(dead_code)] // each test module uses a different part of it

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The password every test server gives oneadmin.
pub const ADMIN_PASSWORD: &str = "test-admin-pw";

/// A running server.
pub struct Server {
    child: Option<Child>,
    url: String,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    log: Arc<Mutex<String>>,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

impl Server {
    /// A fresh server on a fresh data dir.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// A fresh server with extra `serve` arguments (e.g. `--config F`).
    pub fn start_with(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    /// A fresh server with extra `serve` arguments and environment
    /// variables (e.g. `CLOUDGATE_SSH_CONFIG` for the real-host tests).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("var");
        let mut server = Server {
            child: None,
            url: String::new(),
            data_dir,
            _tmp: Some(tmp),
            log: Arc::new(Mutex::new(String::new())),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.spawn();
        server
    }

    /// The server every test may share; tests on it use their own users.
    pub fn shared() -> &'static Server {
        static SHARED: OnceLock<Server> = OnceLock::new();
        SHARED.get_or_init(Server::start)
    }

    fn spawn(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .env("CLOUDGATE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // The shared server is a static, never dropped: it must stop by
            // itself when the test binary exits.
            .env("CLOUDGATE_EXIT_WITH_PARENT", "1")
            .env("RUST_LOG", "info")
            // Run where no config/cloudgate.conf is, unless a test names one.
            .current_dir(self.data_dir.parent().expect("data dir has a parent"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cloudgate");
        let stderr = child.stderr.take().expect("stderr");
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("cloudgate listening on ") {
                    let _ = tx.send(url.to_string());
                }
                let mut log = log.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => self.url = url,
            Err(_) => panic!("server did not start; its output:\n{}", self.log()),
        }
        self.wait_healthy();
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ureq::get(&self.url("/v1/health")).call().is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server never became healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The base URL plus `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.url
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Starts again on the same data dir (after `kill_hard` or `stop`).
    pub fn restart(&mut self) {
        self.kill_hard();
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A name no other test uses, for users and objects on the shared server.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An HTTP answer, whatever its status.
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Response headers we look at.
    pub www_authenticate: Option<String>,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends a request with optional Basic credentials and body; never fails
/// on a status, so tests can assert on 4xx answers.
pub fn send(method: &str, url: &str, auth: Option<(&str, &str)>, body: Option<&str>) -> Answer {
    let mut req = ureq::request(method, url);
    if let Some((user, password)) = auth {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        req = req.set("Authorization", &format!("Basic {token}"));
    }
    let result = match body {
        Some(body) => req
            .set("Content-Type", "application/json")
            .send_string(body),
        None => req.call(),
    };
    let response = any_status(result, &format!("{method} {url}"));
    let status = response.status();
    let www_authenticate = response.header("WWW-Authenticate").map(str::to_string);
    let mut body = String::new();
    response
        .into_reader()
        .take(16 << 20)
        .read_to_string(&mut body)
        .expect("read body");
    Answer {
        status,
        www_authenticate,
        body,
    }
}

/// oneadmin's credentials on a test server.
pub fn admin() -> Option<(&'static str, &'static str)> {
    Some(("oneadmin", ADMIN_PASSWORD))
}

/// Runs the CLI against `server` as `auth` (`user:password`) from `dir`,
/// with no `ONE_AUTH`; returns (exit code, stdout, stderr).
pub fn run_cli(server: &Server, auth: &str, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("ONE_AUTH")
        .env("CLOUDGATE_URL", server.base())
        .env("CLOUDGATE_AUTH", auth)
        .output()
        .expect("run cloudgate");
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python of the virtualenv `.ci/setup` creates, if it can import
/// `imports` (`what`, in messages). Missing: the test is skipped, except
/// under CI, where it fails (STYLE.md §4: CI turns "client missing" into
/// a failure).
pub fn venv_python(imports: &str, what: &str) -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let usable = python.is_file()
        && Command::new(&python)
            .args(["-c", imports])
            .status()
            .is_ok_and(|s| s.success());
    if usable {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} lacks {what}: run .ci/setup",
        python.display()
    );
    eprintln!("skipped: no {what} in .venv (run .ci/setup)");
    None
}

/// Asserts that a client script (`what`, in the message) exited 0; if
/// not, fails with its stdout, its stderr and, when it talked to `server`,
/// the end of that server's log (the other half of the story).
pub fn assert_script_ok(what: &str, out: &Output, server: Option<&Server>) {
    if out.status.success() {
        return;
    }
    let log_tail = server.map_or_else(String::new, |server| {
        let log = server.log();
        let mut tail: Vec<&str> = log.lines().rev().take(40).collect();
        tail.reverse();
        format!("server log tail:\n{}", tail.join("\n"))
    });
    panic!(
        "{what} failed:\n{}\n{}\n{log_tail}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
}

/// The response of a request whatever its status, so tests can assert on
/// 4xx and 5xx answers; a transport failure panics, naming `what`.
pub fn any_status(result: Result<ureq::Response, ureq::Error>, what: &str) -> ureq::Response {
    match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// The names of the files in `dir`, sorted (none if it does not exist).
pub fn dir_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The names of the files in a server's image directory, sorted (none if
/// it does not exist yet).
pub fn image_files(server: &Server) -> Vec<String> {
    dir_files(&server.data_dir().join("images"))
}
