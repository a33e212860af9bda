//! The `h5salvage` Python extension module (`h5salvage._native`): the Rust
//! library's scan, salvage and merge, and the whole command line, for the
//! Python package in `python/h5salvage/`. Every function releases the GIL
//! while it works; results cross as JSON text (the same documents as
//! `--json`), errors as the package's exceptions (`h5salvage.Error`, an
//! `OSError`) carrying the message the command line prints.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyModule;

use h5salvage::merge::{MergeError, MergeOptions};
use h5salvage::salvage::SalvageError;
use h5salvage::CarveMode;

/// The command line itself (`src/main.rs`), compiled into the module so
/// that the `h5salvage` console script runs exactly the same code.
#[allow(dead_code)]
#[path = "../../src/main.rs"]
mod command_line;

/// A failure: the exception class (in `h5salvage._errors`), the message,
/// and the OS error number when there is one.
struct Failure {
    class: &'static str,
    message: String,
    errno: Option<i32>,
}

impl Failure {
    fn new(class: &'static str, message: String) -> Failure {
        Failure {
            class,
            message,
            errno: None,
        }
    }

    fn io(message: String, e: &std::io::Error) -> Failure {
        Failure {
            class: "Error",
            message,
            errno: e.raw_os_error(),
        }
    }

    fn into_py(self, py: Python<'_>) -> PyErr {
        let class =
            match PyModule::import(py, "h5salvage._errors").and_then(|m| m.getattr(self.class)) {
                Ok(c) => c,
                Err(e) => return e,
            };
        match class.call1((self.message,)) {
            Ok(exc) => {
                if let Some(n) = self.errno {
                    let _ = exc.setattr("errno", n);
                }
                PyErr::from_value(exc)
            }
            Err(e) => e,
        }
    }
}

fn carve_mode(carve: &str) -> PyResult<CarveMode> {
    match carve {
        "auto" => Ok(CarveMode::Auto),
        "never" => Ok(CarveMode::Never),
        "only" => Ok(CarveMode::Only),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "carve must be True, False or \"only\", not {other:?}"
        ))),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure::new("Error", format!("report: {e}")))
}

/// scan(path, carve, map) -> JSON text of `scan --json`.
#[pyfunction]
#[pyo3(signature = (path, carve, map=None, template=Vec::new(), infer=true))]
fn scan(
    py: Python<'_>,
    path: PathBuf,
    carve: &str,
    map: Option<PathBuf>,
    template: Vec<PathBuf>,
    infer: bool,
) -> PyResult<String> {
    let mode = carve_mode(carve)?;
    py.allow_threads(|| {
        let opts = chunk_options(&template, infer)?;
        let inv = match &map {
            Some(svg) => h5salvage::report::map::scan_with_map(&path, mode, &opts, svg),
            None => h5salvage::pipeline::scan_path_chunks(&path, mode, &opts),
        }
        .map_err(|e| Failure::io(format!("{}: {e}", path.display()), &e))?;
        to_json(&h5salvage::report::json(&inv))
    })
    .map_err(|f| f.into_py(py))
}

/// salvage(input, output, force, carve) -> JSON text of `salvage --json`.
#[pyfunction]
#[pyo3(signature = (input, output, force, carve, template=Vec::new(), infer=true, wait_lock=300.0))]
#[allow(clippy::too_many_arguments)]
fn salvage(
    py: Python<'_>,
    input: PathBuf,
    output: PathBuf,
    force: bool,
    carve: &str,
    template: Vec<PathBuf>,
    infer: bool,
    wait_lock: f64,
) -> PyResult<String> {
    let mode = carve_mode(carve)?;
    py.allow_threads(|| {
        let name = input.display();
        let opts = h5salvage::salvage::SalvageOptions {
            force,
            mode,
            wait_lock: std::time::Duration::from_secs_f64(wait_lock.clamp(0.0, 1e9)),
            chunks: chunk_options(&template, infer)?,
        };
        match h5salvage::salvage::salvage_opts(&input, &output, &opts) {
            Ok(rep) => to_json(&rep),
            Err(SalvageError::NothingRecoverable(why)) => Err(Failure::new(
                "NothingRecoverable",
                format!("{name}: nothing recoverable ({why}); no output written"),
            )),
            Err(e @ SalvageError::OutputExists) => {
                Err(Failure::new("OutputExists", format!("{name}: {e}")))
            }
            Err(SalvageError::Input(ref io)) => Err(Failure::io(
                format!("{name}: {}", SalvageError::Input(clone_io(io))),
                io,
            )),
            Err(e) => Err(Failure::new("Error", format!("{name}: {e}"))),
        }
    })
    .map_err(|f| f.into_py(py))
}

/// Options of the search for chunks no index lists (`--template`,
/// `--no-infer`).
fn chunk_options(
    template: &[PathBuf],
    infer: bool,
) -> Result<h5salvage::carve::chunks::Options, Failure> {
    h5salvage::carve::chunks::Options::from_templates(template, infer)
        .map_err(|e| Failure::new("Error", e))
}

fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// merge(output, inputs, exclude, remove_merged, quarantine, jobs,
/// include_open, wait_lock) -> JSON text of `merge --json`.
#[pyfunction]
#[pyo3(signature = (output, inputs, exclude, remove_merged, quarantine, jobs, include_open=false, wait_lock=300.0))]
#[allow(clippy::too_many_arguments)]
fn merge(
    py: Python<'_>,
    output: PathBuf,
    inputs: Vec<PathBuf>,
    exclude: Vec<String>,
    remove_merged: bool,
    quarantine: Option<PathBuf>,
    jobs: usize,
    include_open: bool,
    wait_lock: f64,
) -> PyResult<String> {
    py.allow_threads(|| {
        let usage = |e: MergeError| Failure::new("Error", e.to_string());
        let inputs = h5salvage::merge::expand_inputs(&inputs, &output).map_err(usage)?;
        let opts = MergeOptions {
            inputs,
            output: output.clone(),
            exclude,
            remove_merged,
            quarantine,
            jobs,
            wait_lock: std::time::Duration::from_secs_f64(wait_lock.clamp(0.0, 1e9)),
            include_open,
        };
        let rep = h5salvage::merge::merge(&opts)
            .map_err(|e| Failure::new("Error", format!("{}: {e}", output.display())))?;
        let mut doc = serde_json::to_value(&rep)
            .map_err(|e| Failure::new("Error", format!("report: {e}")))?;
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("exit_code".into(), rep.exit_code().into());
        }
        to_json(&doc)
    })
    .map_err(|f| f.into_py(py))
}

/// cli(argv) -> exit code: the `h5salvage` command line (argv[0] is the
/// program name).
#[pyfunction]
fn cli(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.allow_threads(|| command_line::run(argv))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    m.add_function(wrap_pyfunction!(salvage, m)?)?;
    m.add_function(wrap_pyfunction!(merge, m)?)?;
    m.add_function(wrap_pyfunction!(cli, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
