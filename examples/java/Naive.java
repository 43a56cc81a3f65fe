// Save a record "atomically" the naive way: write a temp file through a
// BufferedWriter, Files.move(ATOMIC_MOVE) it over the real one. No force()
// anywhere: after a power cut the record can be empty or torn, and the
// rename itself may be lost.
import java.io.BufferedWriter;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

public class Naive {
    static final int LINES = 500;

    public static void main(String[] args) throws IOException {
        Path tmp = Path.of("record.txt.tmp"), target = Path.of("record.txt");
        try (BufferedWriter w = new BufferedWriter(new OutputStreamWriter(
                new FileOutputStream(tmp.toFile()), StandardCharsets.UTF_8))) {
            for (int i = 0; i < LINES; i++) {
                w.write(String.format("line %04d: the quick brown fox jumps over the lazy dog\n", i));
            }
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
