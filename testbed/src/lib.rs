//! A real Kubernetes control plane for xero-operator's integration tests, demo and benchmarks:
//! one etcd and one kube-apiserver on free loopback ports, with RBAC authorization, a static
//! admin token and service-account signing keys, as controller-runtime's envtest provides.
//!
//! Every process the control plane starts is registered with a watchdog process that holds the
//! read end of a pipe from the owning process. When the owner exits for any reason (a normal
//! exit, a panic, a signal, even SIGKILL) the pipe closes and the watchdog stops etcd and the
//! API server and removes the data directory, so no process is ever left behind.
#![forbid(unsafe_code)]

mod binaries;
mod process;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Deserialize as _;

pub use binaries::{TestbedBinaries, ensure_binaries, ensure_control_plane_binaries};

/// How long the control plane may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How often a start is retried when a free port was taken by someone else in the meantime.
const START_ATTEMPTS: usize = 3;

/// Errors of the testbed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("testbed binaries: {0}")]
    Binaries(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Start(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Where the control plane keeps its data and which CRDs it installs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory for etcd's data, certificates, keys, logs and the kubeconfig. A new temporary
    /// directory (removed at the end) when `None`.
    pub dir: Option<PathBuf>,
    /// Directory of CRD manifests (`*.yaml`) to install and wait for; skipped when missing.
    pub crd_dir: Option<PathBuf>,
}

/// A running etcd and kube-apiserver.
pub struct ControlPlane {
    dir: PathBuf,
    // Keeps a temporary data directory alive as long as the control plane.
    _tempdir: Option<tempfile::TempDir>,
    binaries: TestbedBinaries,
    server: String,
    admin_token: String,
    ca_pem: Vec<u8>,
    kubeconfig_path: PathBuf,
    children: Mutex<Vec<Child>>,
    // Dropping (or the process exiting) closes the watchdog's stdin, which stops the children.
    _watchdog: Mutex<ChildStdin>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("dir", &self.dir)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver, waits until the API server is ready and the CRDs in
    /// `options.crd_dir` are Established. Blocking; safe to call from inside an async runtime.
    pub fn start(options: &Options) -> Result<Self> {
        let options = options.clone();
        std::thread::spawn(move || {
            let mut last = None;
            for _ in 0..START_ATTEMPTS {
                match Self::start_once(&options) {
                    Ok(plane) => return Ok(plane),
                    Err(err) => last = Some(err),
                }
            }
            Err(last.unwrap_or_else(|| Error::Start("no start attempted".into())))
        })
        .join()
        .map_err(|_| Error::Start("the start-up thread panicked".into()))?
    }

    fn start_once(options: &Options) -> Result<Self> {
        let binaries = ensure_control_plane_binaries()?;
        let (tempdir, dir) = data_dir(options)?;
        // Registered right after each spawn: if a later step fails, dropping the watchdog's
        // stdin on return stops what has started so far.
        let mut watchdog = process::Watchdog::spawn(&dir, tempdir.is_some())?;
        let mut children = Vec::new();

        let [etcd_client, etcd_peer, api_port] = free_ports()?;
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd = spawn_etcd(&binaries, &dir, &etcd_url, etcd_peer)?;
        watchdog.register(&etcd)?;
        children.push(etcd);

        let admin_token = random_token()?;
        let cert_dir = dir.join("certs");
        let apiserver = spawn_apiserver(
            &binaries,
            &dir,
            &etcd_url,
            api_port,
            &admin_token,
            &cert_dir,
        )?;
        watchdog.register(&apiserver)?;
        children.push(apiserver);

        let server = format!("https://127.0.0.1:{api_port}");
        let ca_pem = wait_for_serving_cert(&cert_dir, &mut children, &dir)?;
        let kubeconfig_path = dir.join("kubeconfig");
        let plane = ControlPlane {
            dir,
            _tempdir: tempdir,
            binaries,
            server,
            admin_token,
            ca_pem,
            kubeconfig_path,
            children: Mutex::new(children),
            _watchdog: Mutex::new(watchdog.into_stdin()),
        };
        std::fs::write(&plane.kubeconfig_path, plane.kubeconfig_yaml()?)
            .map_err(io_err("write the kubeconfig"))?;
        plane.wait_ready_with_crds(options.crd_dir.as_deref())?;
        Ok(plane)
    }

    /// Waits until the API server is ready, then installs the CRDs in `crd_dir`, if any, and
    /// waits until they are Established. Blocks on a runtime of its own.
    fn wait_ready_with_crds(&self, crd_dir: Option<&Path>) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_err("build a runtime"))?;
        runtime.block_on(async {
            self.wait_ready().await?;
            if let Some(crd_dir) = crd_dir {
                install_crds(&self.client().await?, crd_dir).await?;
            }
            Ok(())
        })
    }

    /// The API server's URL, `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The directory with the data, logs and kubeconfig.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kubeconfig file for the admin user.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The binaries the control plane runs, and kubectl beside them (helm too, but it may not be
    /// built yet: `ensure_binaries` builds it).
    pub fn binaries(&self) -> &TestbedBinaries {
        &self.binaries
    }

    /// The admin kubeconfig as YAML.
    pub fn kubeconfig_yaml(&self) -> Result<String> {
        self.kubeconfig_for("admin", &self.admin_token)
    }

    /// A kubeconfig YAML that authenticates with `token` (for example a ServiceAccount token).
    pub fn kubeconfig_for(&self, user: &str, token: &str) -> Result<String> {
        use base64::Engine as _;
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": {
                "server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": user}}],
            "current-context": "testbed",
        });
        serde_yaml::to_string(&config).map_err(|e| Error::Kubeconfig(e.to_string()))
    }

    /// A client for the admin user (`system:masters`).
    pub async fn client(&self) -> Result<Client> {
        self.client_with_token("admin", &self.admin_token).await
    }

    /// A client that authenticates with `token`.
    pub async fn client_with_token(&self, user: &str, token: &str) -> Result<Client> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig_for(user, token)?)
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?;
        Ok(Client::try_from(config)?)
    }

    /// Creates a new namespace with a unique name starting with `prefix`.
    pub async fn namespace(&self, client: &Client, prefix: &str) -> Result<String> {
        let suffix = random_token()?;
        let prefix: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let name = format!("{}-{}", prefix.trim_matches('-'), &suffix[..8]);
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))
        .map_err(|e| Error::Start(e.to_string()))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await?;
        Ok(name)
    }

    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = self.client().await?;
        loop {
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .map_err(|e| Error::Start(e.to_string()))?;
            match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(Error::Start(format!(
                        "kube-apiserver not ready after {START_TIMEOUT:?}; see {}",
                        self.dir.join("kube-apiserver.log").display()
                    )));
                }
                _ => {
                    self.check_children()?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn check_children(&self) -> Result<()> {
        let mut children = self
            .children
            .lock()
            .map_err(|_| Error::Start("poisoned".into()))?;
        process::check_alive(&mut children, &self.dir)
    }

    /// Stops etcd and the API server and waits until they have exited.
    pub fn stop(&self) {
        if let Ok(mut children) = self.children.lock() {
            process::stop_all(&mut children);
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The control plane shared by all tests of one test binary, started on first use with the
/// project's CRDs installed. The watchdog stops it when the test binary exits.
pub fn shared() -> &'static ControlPlane {
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    PLANE.get_or_init(|| {
        let options = Options {
            dir: None,
            crd_dir: Some(workspace_root().join("crds")),
        };
        match ControlPlane::start(&options) {
            Ok(plane) => plane,
            Err(err) => panic!("the testbed control plane did not start: {err}"),
        }
    })
}

/// What one test works with: an admin client and a namespace of its own.
pub struct TestEnv {
    pub plane: &'static ControlPlane,
    pub client: Client,
    pub namespace: String,
}

impl TestEnv {
    /// Connects to the shared control plane and creates a namespace for the test `name`.
    pub async fn new(name: &str) -> TestEnv {
        let plane = shared();
        let client = match plane.client().await {
            Ok(client) => client,
            Err(err) => panic!("testbed client: {err}"),
        };
        let namespace = match plane.namespace(&client, name).await {
            Ok(ns) => ns,
            Err(err) => panic!("testbed namespace: {err}"),
        };
        TestEnv {
            plane,
            client,
            namespace,
        }
    }
}

/// The repository's root directory (where `crds/`, `hack/` and `tools/` are).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Applies every CRD manifest in `dir` and waits until each one is Established.
pub async fn install_crds(client: &Client, dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    paths.sort();
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    let mut names = Vec::new();
    for path in paths {
        let text =
            std::fs::read_to_string(&path).map_err(io_err(format!("read {}", path.display())))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document)
                .map_err(|e| Error::Start(format!("{}: {e}", path.display())))?;
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value)
                .map_err(|e| Error::Start(format!("{}: {e}", path.display())))?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply("xero-testbed").force(),
                &Patch::Apply(&crd),
            )
            .await?;
            names.push(name);
        }
    }
    for name in names {
        wait_established(&api, &name).await?;
    }
    Ok(())
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let crd = api.get(name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Start(format!(
                "CRD {name} not Established after 30s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The data directory: `options.dir` (created if missing), or a new temporary directory that
/// is removed when the returned guard drops.
fn data_dir(options: &Options) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match &options.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
            Ok((None, dir.clone()))
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("xero-testbed-")
                .tempdir()
                .map_err(io_err("create a temporary directory"))?;
            let path = tmp.path().to_path_buf();
            Ok((Some(tmp), path))
        }
    }
}

/// Starts a single-member etcd serving clients at `etcd_url`, its data and log in `dir`.
fn spawn_etcd(
    binaries: &TestbedBinaries,
    dir: &Path,
    etcd_url: &str,
    peer_port: u16,
) -> Result<Child> {
    process::spawn(
        &binaries.etcd,
        &[
            "--name=testbed".into(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
            format!("--initial-cluster=testbed=http://127.0.0.1:{peer_port}"),
            "--listen-metrics-urls=".into(),
            "--unsafe-no-fsync".into(),
            "--log-level=warn".into(),
        ],
        &dir.join("etcd.log"),
    )
}

/// Writes the admin token file and the service-account signing key into `dir`, then starts
/// kube-apiserver with RBAC on `port`, its log in `dir` and its self-signed serving certificate
/// in `cert_dir`.
fn spawn_apiserver(
    binaries: &TestbedBinaries,
    dir: &Path,
    etcd_url: &str,
    port: u16,
    admin_token: &str,
    cert_dir: &Path,
) -> Result<Child> {
    let tokens = dir.join("tokens.csv");
    std::fs::write(
        &tokens,
        format!("{admin_token},admin,admin,\"system:masters\"\n"),
    )
    .map_err(io_err("write the token file"))?;
    let sa_key = dir.join("service-account.key");
    process::generate_rsa_key(&sa_key)?;
    process::spawn(
        &binaries.kube_apiserver,
        &[
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", cert_dir.display()),
            format!("--token-auth-file={}", tokens.display()),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", sa_key.display()),
            format!("--service-account-signing-key-file={}", sa_key.display()),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "-v=0".into(),
        ],
        &dir.join("kube-apiserver.log"),
    )
}

/// Three distinct free ports on 127.0.0.1. Another process may take one before the server binds
/// it; [`ControlPlane::start`] retries with new ports when that happens.
fn free_ports() -> Result<[u16; 3]> {
    let listeners = (0..3)
        .map(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io_err("find a free loopback port"))?;
    let ports = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io_err("read a loopback port"))?;
    Ok([ports[0], ports[1], ports[2]])
}

/// 32 hex characters from the operating system's random source.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut file = std::fs::File::open("/dev/urandom").map_err(io_err("open /dev/urandom"))?;
    std::io::Read::read_exact(&mut file, &mut bytes).map_err(io_err("read /dev/urandom"))?;
    let mut out = String::with_capacity(32);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

fn wait_for_serving_cert(cert_dir: &Path, children: &mut [Child], dir: &Path) -> Result<Vec<u8>> {
    let deadline = Instant::now() + START_TIMEOUT;
    let cert = cert_dir.join("apiserver.crt");
    loop {
        if let Ok(pem) = std::fs::read(&cert)
            && !pem.is_empty()
        {
            return Ok(pem);
        }
        process::check_alive(children, dir)?;
        if Instant::now() > deadline {
            return Err(Error::Start(
                "kube-apiserver wrote no serving certificate".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
