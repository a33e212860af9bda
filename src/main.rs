//! The `h5salvage` command line: a thin layer over the library.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use h5salvage::report::{self, exit};

#[derive(Parser)]
#[command(
    name = "h5salvage",
    version,
    about = "Scan and salvage damaged HDF5 files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
}

fn scan(files: &[PathBuf], json: bool) -> i32 {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut code = exit::HEALTHY;
    let mut docs = Vec::new();
    for path in files {
        match h5salvage::scan_path(path) {
            Ok(inv) => {
                code = report::combine_exit(code, report::exit_code(inv.verdict()));
                if json {
                    docs.push(report::json(&inv));
                } else {
                    let _ = report::human(&inv, &mut out);
                }
            }
            Err(e) => {
                eprintln!("h5salvage: {}: {e}", path.display());
                code = report::combine_exit(code, exit::USAGE_OR_IO);
            }
        }
    }
    if json {
        let doc = if docs.len() == 1 {
            docs.pop().unwrap_or_default()
        } else {
            serde_json::Value::Array(docs)
        };
        let _ = serde_json::to_writer_pretty(&mut out, &doc);
        let _ = writeln!(out);
    }
    code
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Scan { files, json } => scan(&files, json),
    };
    ExitCode::from(code as u8)
}
