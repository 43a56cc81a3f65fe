// Save a record "atomically" the naive way: write a temp file through bufio,
// os.Rename it over the real one. No Sync anywhere: after a power cut the
// record can be empty or torn, and the rename itself may be lost.
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
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename("record.txt.tmp", "record.txt"); err != nil {
		log.Fatal(err)
	}
}
