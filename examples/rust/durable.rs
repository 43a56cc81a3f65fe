// Save a record durably: write a temp file, flush the BufWriter and sync_all
// the file, fs::rename it over the real one, then sync_all the directory.
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};

const LINES: usize = 500;

fn main() -> io::Result<()> {
    let mut w = BufWriter::new(File::create("record.txt.tmp")?);
    for i in 0..LINES {
        writeln!(w, "line {:04}: the quick brown fox jumps over the lazy dog", i)?;
    }
    // into_inner flushes the BufWriter; File::flush is a no-op, sync_all is fsync(2).
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename("record.txt.tmp", "record.txt")?;
    File::open(".")?.sync_all()
}
