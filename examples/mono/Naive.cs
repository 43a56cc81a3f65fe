// Save a record "atomically" the naive way: write a temp file through a
// StreamWriter, move it over the real one. No Flush(true) anywhere: after a
// power cut the record can be empty or torn, and the move itself may be lost.
// File.Replace needs an existing target; the first save uses File.Move, which
// Mono implements as link(tmp, target) + unlink(tmp).
using System.IO;

class Naive {
    const int Lines = 500;

    static void Main() {
        const string tmp = "record.txt.tmp", target = "record.txt";
        using (var w = new StreamWriter(tmp)) {
            for (int i = 0; i < Lines; i++)
                w.Write($"line {i:D4}: the quick brown fox jumps over the lazy dog\n");
        }
        if (File.Exists(target))
            File.Replace(tmp, target, null);
        else
            File.Move(tmp, target);
    }
}
