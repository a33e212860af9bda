//! The `h5salvage` command line: a thin layer over the library.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use h5salvage::report::{self, exit};
use h5salvage::CarveMode;

#[derive(Parser)]
#[command(
    name = "h5salvage",
    version,
    about = "Scan and salvage damaged HDF5 files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Largest chunk decoded or decompressed, in MiB (default 1024): larger
    /// chunks are refused and reported, never allocated. A deflate stream is
    /// never inflated past its chunk's size.
    #[arg(long, global = true, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_chunk_mib: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Report what each file holds and what is broken.
    ///
    /// Exit codes: 0 all healthy, 1 damaged (something readable), 2 usage
    /// or I/O error, 3 nothing readable in at least one file.
    Scan {
        /// HDF5 files to scan (damaged ones welcome).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON document per file (a JSON array when several).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        carve: CarveArgs,
        #[command(flatten)]
        chunks: ChunkArgs,
        /// Draw the file as an SVG picture of its byte ranges (superblock,
        /// headers, index nodes, cache image, heaps, raw data, unclaimed,
        /// zeroed, missing; damage in red). One FILE only.
        #[arg(long, value_name = "SVG")]
        map: Option<PathBuf>,
    },
    /// Write everything recoverable from INPUT into a new, clean HDF5 file.
    ///
    /// One run at a time writes OUTPUT (a lock file beside it, held for
    /// the run). An input that changes while it is read (truncated,
    /// written to) is an error: no output. An input another process holds
    /// open for writing is salvaged as a snapshot, and the report says so.
    ///
    /// Exit codes: 0 everything recovered, 1 something recovered but some
    /// objects are partial or lost, 2 usage, I/O or write error (no output
    /// is left behind; also: OUTPUT locked by another run past --wait-lock,
    /// input changed while read), 3 nothing recoverable.
    Salvage {
        /// The damaged file (opened read-only, never modified).
        input: PathBuf,
        /// The new file (written to a temporary file beside it, renamed
        /// when complete).
        #[arg(short, long)]
        output: PathBuf,
        /// Replace OUTPUT if it exists.
        #[arg(long)]
        force: bool,
        /// Print the account of every object as JSON instead of the summary.
        #[arg(long)]
        json: bool,
        /// Also write the JSON account to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        carve: CarveArgs,
        #[command(flatten)]
        lock: LockArgs,
        #[command(flatten)]
        chunks: ChunkArgs,
    },
    /// Merge the top-level groups of many worker files into one OUTPUT.
    ///
    /// INPUTs are files or directories (searched non-recursively for *.h5
    /// and *.corrupted). Every group at the root of each input is copied to
    /// the root of OUTPUT with the salvage rules (damaged inputs are carved;
    /// nameless groups go to /lost+found/<input stem>/). Groups already in
    /// OUTPUT are kept (re-running resumes); of several copies an intact one
    /// beats a partial one, then the first input by path wins. OUTPUT is
    /// added to through a copy renamed over it when complete: a killed merge
    /// leaves OUTPUT as it was. Inputs are never modified (only
    /// --remove-merged deletes and --quarantine moves them). One run at a
    /// time writes OUTPUT (a lock file beside it); an OUTPUT changed by
    /// another process since it was copied is never replaced. Inputs a
    /// writer still holds open are skipped (see --include-open).
    ///
    /// Exit codes: 0 everything merged (or already present), 1 something
    /// merged but something partial or lost, 2 usage, I/O or write error
    /// (an unreadable input, or OUTPUT could not be written: it is left as
    /// it was), 3 nothing merged.
    Merge {
        /// Worker files or directories of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// The merged file (created, or added to).
        #[arg(short, long)]
        output: PathBuf,
        /// Top-level group name never copied (repeatable; giving it
        /// replaces the default `init`).
        #[arg(long, value_name = "NAME", default_value = "init")]
        exclude: Vec<String>,
        /// Delete each input whose every group was read back from OUTPUT
        /// and found equal.
        #[arg(long)]
        remove_merged: bool,
        /// Move inputs from which nothing could be recovered into DIR.
        #[arg(long, value_name = "DIR")]
        quarantine: Option<PathBuf>,
        /// Threads inventorying inputs (default: one per core).
        #[arg(short, long, default_value_t = 0)]
        jobs: usize,
        /// Print the account as JSON instead of the table.
        #[arg(long)]
        json: bool,
        /// Also merge inputs another process still holds open for writing
        /// (libhdf5's lock): what is on disk is a snapshot. By default they
        /// are skipped.
        #[arg(long)]
        include_open: bool,
        #[command(flatten)]
        lock: LockArgs,
    },
}

/// One run at a time per OUTPUT: a lock file beside it, held for the run.
#[derive(clap::Args)]
struct LockArgs {
    /// How long to wait for another h5salvage run writing the same OUTPUT
    /// to finish before giving up (exit 2).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    wait_lock: u64,
}

impl LockArgs {
    fn wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.wait_lock)
    }
}

/// Carving: searching the whole file for HDF5 structures by signature, for
/// files whose superblock or root is gone or stale.
#[derive(clap::Args)]
struct CarveArgs {
    /// Never carve (by default carving runs when the walk finds damage).
    #[arg(long, conflicts_with = "carve_only")]
    no_carve: bool,
    /// Only carve: ignore the superblock's root group.
    #[arg(long)]
    carve_only: bool,
}

/// Chunks no index lists (a killed appending writer's newest chunks).
#[derive(clap::Args)]
struct ChunkArgs {
    /// Take element types, chunk shapes and filters from the chunked
    /// datasets of FILE (a healthy file written by the same program) for
    /// datasets whose header is not in the input (repeatable).
    #[arg(long, value_name = "FILE")]
    template: Vec<PathBuf>,
    /// Never place found chunks by allocation order: every chunk no index
    /// record lists goes to /lost+found.
    #[arg(long)]
    no_infer: bool,
}

impl ChunkArgs {
    fn options(&self) -> Result<h5salvage::carve::chunks::Options, String> {
        h5salvage::carve::chunks::Options::from_templates(&self.template, !self.no_infer)
    }
}

impl CarveArgs {
    fn mode(&self) -> CarveMode {
        if self.no_carve {
            CarveMode::Never
        } else if self.carve_only {
            CarveMode::Only
        } else {
            CarveMode::Auto
        }
    }
}

fn salvage(
    input: &std::path::Path,
    output: &std::path::Path,
    opts: &h5salvage::salvage::SalvageOptions,
    json: bool,
    report_file: Option<&std::path::Path>,
    chunks: &ChunkArgs,
) -> i32 {
    let chunk_opts = match chunks.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("h5salvage: {e}");
            return exit::USAGE_OR_IO;
        }
    };
    let opts = h5salvage::salvage::SalvageOptions {
        chunks: chunk_opts,
        ..opts.clone()
    };
    let rep = match h5salvage::salvage::salvage_opts(input, output, &opts) {
        Ok(r) => r,
        Err(h5salvage::salvage::SalvageError::NothingRecoverable(why)) => {
            eprintln!(
                "h5salvage: {}: nothing recoverable ({why}); no output written",
                input.display()
            );
            return exit::NOTHING_READABLE;
        }
        Err(e) => {
            eprintln!("h5salvage: {}: {e}", input.display());
            return exit::USAGE_OR_IO;
        }
    };
    // Serialized straight from the report: a `Value` tree of every
    // object's outcome would be the run's largest allocation (issue 15).
    if let Some(path) = report_file {
        let text = serde_json::to_string_pretty(&rep).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("h5salvage: {}: {e}", path.display());
            return exit::USAGE_OR_IO;
        }
    }
    // Buffered: a JSON report is many short lines, and a locked stdout is
    // line-buffered (one write call each).
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &rep);
        let _ = writeln!(out);
    } else {
        let _ = report::salvage_summary(&rep, &mut out);
    }
    let _ = out.flush();
    rep.exit_code()
}

fn merge(opts: h5salvage::merge::MergeOptions, json: bool) -> i32 {
    let rep = match h5salvage::merge::merge(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("h5salvage: {}: {e}", opts.output.display());
            return exit::USAGE_OR_IO;
        }
    };
    // Buffered: a JSON report is many short lines, and a locked stdout is
    // line-buffered (one write call each).
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let _ = serde_json::to_writer_pretty(&mut out, &rep);
        let _ = writeln!(out);
    } else {
        let _ = report::merge_table(&rep, &mut out);
    }
    let _ = out.flush();
    rep.exit_code()
}

fn scan(
    files: &[PathBuf],
    json: bool,
    mode: CarveMode,
    chunks: &ChunkArgs,
    map: Option<&std::path::Path>,
) -> i32 {
    if map.is_some() && files.len() != 1 {
        eprintln!("h5salvage: --map draws one file; {} given", files.len());
        return exit::USAGE_OR_IO;
    }
    let opts = match chunks.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("h5salvage: {e}");
            return exit::USAGE_OR_IO;
        }
    };
    // Buffered: a JSON report is many short lines, and a locked stdout is
    // line-buffered (one write call each).
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut code = exit::HEALTHY;
    // JSON of one file goes straight to `out`; of several, each document
    // is kept until all are read (an array unless exactly one was read).
    let direct = files.len() == 1;
    let mut docs: Vec<Vec<u8>> = Vec::new();
    let mut written = false;
    for path in files {
        // The walk hands its objects one by one to the report (memory
        // flat in the number of objects: lines or JSON text are kept, not
        // objects); the map needs them all.
        let mut lines = report::ObjectLines::default();
        let mut objects = report::ObjectsJson::default();
        let sink: &mut dyn h5salvage::inventory::ObjectSink =
            if json { &mut objects } else { &mut lines };
        let scanned = match map {
            Some(svg) => report::map::scan_with_map(path, mode, &opts, svg),
            None => h5salvage::pipeline::scan_path_streamed(path, mode, &opts, sink),
        };
        match scanned {
            Ok(inv) => {
                code = report::combine_exit(code, report::exit_code(inv.verdict()));
                if json && direct {
                    // Written (even partly: stdout failed) is written.
                    let _ = report::write_json(&inv, &mut objects, &mut out);
                    written = true;
                } else if json {
                    let mut doc = Vec::new();
                    if report::write_json(&inv, &mut objects, &mut doc).is_ok() {
                        docs.push(doc);
                    }
                } else {
                    let _ = report::human_streamed(&inv, &lines, &mut out);
                }
                // The last file's inventory (a carved one holds every
                // object) is freed by the exit: dropping it took several
                // per cent of a killed file's scan.
                if std::ptr::eq(path, files.last().unwrap_or(path))
                    && PROCESS_EXITS.load(std::sync::atomic::Ordering::Relaxed)
                {
                    std::mem::forget(inv);
                    std::mem::forget(lines);
                }
            }
            Err(e) => {
                eprintln!("h5salvage: {}: {e}", path.display());
                code = report::combine_exit(code, exit::USAGE_OR_IO);
            }
        }
    }
    if json {
        let _ = match docs.as_slice() {
            _ if written => Ok(()),
            [doc] => out.write_all(doc),
            docs => report::write_json_array(docs, &mut out),
        };
        let _ = writeln!(out);
    }
    let _ = out.flush();
    code
}

/// The whole command line: `args` as `std::env::args_os` gives them
/// (program name first); returns the exit code. The Python package
/// compiles this file too and calls it for its `h5salvage` command.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE_OR_IO as u8
            } else {
                0
            };
        }
    };
    // Progress bars for a person watching a terminal; never with --json.
    let json = match &cli.command {
        Command::Scan { json, .. }
        | Command::Salvage { json, .. }
        | Command::Merge { json, .. } => *json,
    };
    h5salvage::progress::enable(!json && io::IsTerminal::is_terminal(&io::stderr()));
    if let Some(mib) = cli.max_chunk_mib {
        h5salvage::read::filters::set_max_chunk_bytes((mib as usize) << 20);
    }
    let code = match cli.command {
        Command::Scan {
            files,
            json,
            carve,
            chunks,
            map,
        } => scan(&files, json, carve.mode(), &chunks, map.as_deref()),
        Command::Salvage {
            input,
            output,
            force,
            json,
            report,
            carve,
            lock,
            chunks,
        } => salvage(
            &input,
            &output,
            &h5salvage::salvage::SalvageOptions {
                force,
                mode: carve.mode(),
                wait_lock: lock.wait(),
                chunks: Default::default(),
            },
            json,
            report.as_deref(),
            &chunks,
        ),
        Command::Merge {
            inputs,
            output,
            exclude,
            remove_merged,
            quarantine,
            jobs,
            json,
            include_open,
            lock,
        } => match h5salvage::merge::expand_inputs(&inputs, &output) {
            Ok(inputs) => merge(
                h5salvage::merge::MergeOptions {
                    inputs,
                    output,
                    exclude,
                    remove_merged,
                    quarantine,
                    jobs,
                    wait_lock: lock.wait(),
                    include_open,
                },
                json,
            ),
            Err(e) => {
                eprintln!("h5salvage: {e}");
                exit::USAGE_OR_IO
            }
        },
    };
    code as u8
}

/// Set by the program's own `main` (not by the Python package, whose
/// process goes on after a command): the process exits when the command
/// returns, so what it built need not be freed piece by piece first.
static PROCESS_EXITS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    PROCESS_EXITS.store(true, std::sync::atomic::Ordering::Relaxed);
    ExitCode::from(run(std::env::args_os()))
}
