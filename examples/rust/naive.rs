// Save a record "atomically" the naive way: write a temp file through a
// BufWriter, fs::rename it over the real one. No sync_all anywhere: after a
// power cut the record can be empty or torn, and the rename itself may be lost.
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};

const LINES: usize = 500;

fn main() -> io::Result<()> {
    let mut w = BufWriter::new(File::create("record.txt.tmp")?);
    for i in 0..LINES {
        writeln!(w, "line {:04}: the quick brown fox jumps over the lazy dog", i)?;
    }
    w.flush()?;
    drop(w);
    fs::rename("record.txt.tmp", "record.txt")
}
