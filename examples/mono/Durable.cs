// Save a record durably: write a temp file, Flush(true) it (fsync), move it
// over the real one, then fsync the directory. .NET has no API that opens a
// directory for syncing, so the directory sync is a P/Invoke of libc's
// open(O_RDONLY|O_DIRECTORY) + fsync: the one way to make the move durable.
using System;
using System.ComponentModel;
using System.IO;
using System.Runtime.InteropServices;

class Durable {
    const int Lines = 500;
    const int O_RDONLY = 0, O_DIRECTORY = 0x10000;

    [DllImport("libc", SetLastError = true)] static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] static extern int fsync(int fd);
    [DllImport("libc")] static extern int close(int fd);

    static void SyncDirectory(string path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
            throw new Win32Exception(Marshal.GetLastWin32Error(), $"open {path}");
        try {
            if (fsync(fd) != 0)
                throw new Win32Exception(Marshal.GetLastWin32Error(), $"fsync {path}");
        } finally {
            close(fd);
        }
    }

    static void Main() {
        const string tmp = "record.txt.tmp", target = "record.txt";
        using (var file = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        using (var w = new StreamWriter(file)) {
            for (int i = 0; i < Lines; i++)
                w.Write($"line {i:D4}: the quick brown fox jumps over the lazy dog\n");
            w.Flush();          // the StreamWriter's chars into the FileStream
            file.Flush(true);   // the FileStream's buffer into the kernel, then fsync(2)
        }
        if (File.Exists(target))
            File.Replace(tmp, target, null);
        else
            File.Move(tmp, target);
        SyncDirectory(".");
    }
}
