//! Finding the testbed binaries: `XERO_TESTBED_BIN` when it holds them, otherwise the cache that
//! `hack/testbed-bins.sh` fills (and builds on first use).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{Error, Result, workspace_root};

/// Paths of the binaries the testbed uses.
#[derive(Debug, Clone)]
pub struct TestbedBinaries {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    /// kubectl matching the API server's minor version; `KUBECTL` overrides it.
    pub kubectl: PathBuf,
    /// helm v3; `HELM` overrides it.
    pub helm: PathBuf,
}

impl TestbedBinaries {
    fn in_dir(dir: &Path) -> Self {
        let tool = |var: &str, name: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join(name))
        };
        TestbedBinaries {
            dir: dir.to_path_buf(),
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kubectl: tool("KUBECTL", "kubectl"),
            helm: tool("HELM", "helm"),
        }
    }

    fn path(&self, tool: Tool) -> &Path {
        match tool {
            Tool::Etcd => &self.etcd,
            Tool::KubeApiserver => &self.kube_apiserver,
            Tool::Kubectl => &self.kubectl,
            Tool::Helm => &self.helm,
        }
    }

    fn has(&self, tools: &[Tool]) -> bool {
        tools.iter().all(|tool| self.path(*tool).is_file())
    }
}

/// One binary `hack/testbed-bins.sh` builds, by its name there.
#[derive(Debug, Clone, Copy)]
enum Tool {
    Etcd,
    KubeApiserver,
    Kubectl,
    Helm,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Etcd => "etcd",
            Tool::KubeApiserver => "kube-apiserver",
            Tool::Kubectl => "kubectl",
            Tool::Helm => "helm",
        }
    }
}

const CONTROL_PLANE: &[Tool] = &[Tool::Etcd, Tool::KubeApiserver, Tool::Kubectl];
const ALL: &[Tool] = &[Tool::Etcd, Tool::KubeApiserver, Tool::Kubectl, Tool::Helm];

/// All the testbed binaries, helm included, built into the cache by `hack/testbed-bins.sh` when
/// they are missing. The script runs at most once per process.
pub fn ensure_binaries() -> Result<TestbedBinaries> {
    static FOUND: OnceLock<Result<TestbedBinaries, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate(ALL).map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Binaries)
}

/// What a control plane runs (etcd, kube-apiserver) and kubectl; helm only if it is already
/// there. A demo or `xero-testbed up` never waits for a helm build.
pub fn ensure_control_plane_binaries() -> Result<TestbedBinaries> {
    static FOUND: OnceLock<Result<TestbedBinaries, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| locate(CONTROL_PLANE).map_err(|e| e.to_string()))
        .clone()
        .map_err(Error::Binaries)
}

fn locate(tools: &[Tool]) -> Result<TestbedBinaries> {
    if let Some(dir) = std::env::var_os("XERO_TESTBED_BIN") {
        let found = TestbedBinaries::in_dir(Path::new(&dir));
        if found.has(tools) {
            return Ok(found);
        }
    }
    let script = workspace_root().join("hack/testbed-bins.sh");
    let output = Command::new(&script)
        .args(tools.iter().map(|tool| tool.name()))
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| Error::Binaries(format!("run {}: {e}", script.display())))?;
    if !output.status.success() {
        return Err(Error::Binaries(format!(
            "{} failed with {}",
            script.display(),
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout
        .lines()
        .last()
        .ok_or_else(|| Error::Binaries(format!("{} printed no directory", script.display())))?;
    let found = TestbedBinaries::in_dir(Path::new(dir.trim()));
    if found.has(tools) {
        Ok(found)
    } else {
        let names: Vec<&str> = tools.iter().map(|tool| tool.name()).collect();
        Err(Error::Binaries(format!(
            "{dir} lacks one of {}",
            names.join(", ")
        )))
    }
}
