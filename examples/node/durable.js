// Save a record durably: write a temp file, fsync it, rename it over the real
// one, then fsync the directory (opened read-only) so the rename survives.
'use strict';
const fs = require('fs');

const LINES = 500;

const fd = fs.openSync('record.txt.tmp', 'w');
for (let i = 0; i < LINES; i++) {
  fs.writeSync(fd, `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog\n`);
}
fs.fsyncSync(fd);
fs.closeSync(fd);
fs.renameSync('record.txt.tmp', 'record.txt');
const dir = fs.openSync('.', 'r');
fs.fsyncSync(dir);
fs.closeSync(dir);
