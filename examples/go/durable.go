// Save a record durably: write a temp file, Flush and Sync it, os.Rename it
// over the real one, then Sync the directory so the rename itself survives.
package main

import (
	"bufio"
	"fmt"
	"log"
	"os"
)

const lines = 500

func main() {
	f, err := os.Create("record.txt.tmp")
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(w, "line %04d: the quick brown fox jumps over the lazy dog\n", i)
	}
	if err := w.Flush(); err != nil { // bufio's buffer into the kernel
		log.Fatal(err)
	}
	if err := f.Sync(); err != nil { // fsync(2)
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename("record.txt.tmp", "record.txt"); err != nil {
		log.Fatal(err)
	}
	d, err := os.Open(".")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		log.Fatal(err)
	}
	d.Close()
}
