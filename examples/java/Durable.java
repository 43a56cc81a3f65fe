// Save a record durably: write a temp file, flush it and force(true) its
// channel (fsync), Files.move(ATOMIC_MOVE) it over the real one, then force
// the directory: FileChannel.open(dir, READ).force(true) is the one way the
// JDK syncs a directory on Linux.
import java.io.BufferedWriter;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

public class Durable {
    static final int LINES = 500;

    public static void main(String[] args) throws IOException {
        Path tmp = Path.of("record.txt.tmp"), target = Path.of("record.txt");
        FileOutputStream out = new FileOutputStream(tmp.toFile());
        try (BufferedWriter w = new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8))) {
            for (int i = 0; i < LINES; i++) {
                w.write(String.format("line %04d: the quick brown fox jumps over the lazy dog\n", i));
            }
            w.flush();                     // the writers' buffers into the kernel
            out.getChannel().force(true);  // fsync(2)
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Path dir = target.toAbsolutePath().getParent();
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        }
    }
}
