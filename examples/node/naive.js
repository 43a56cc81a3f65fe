// Save a record "atomically" the naive way: write a temp file, rename it over
// the real one. No fsync anywhere: after a power cut the record can be empty
// or torn, and the rename itself may be lost.
'use strict';
const fs = require('fs');

const LINES = 500;

const fd = fs.openSync('record.txt.tmp', 'w');
for (let i = 0; i < LINES; i++) {
  fs.writeSync(fd, `line ${String(i).padStart(4, '0')}: the quick brown fox jumps over the lazy dog\n`);
}
fs.closeSync(fd);
fs.renameSync('record.txt.tmp', 'record.txt');
