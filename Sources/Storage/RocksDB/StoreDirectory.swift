import Glibc

/// The files of a store directory, read with opendir/stat; no RocksDB involved, so it is safe
/// from any thread at any time, and works on a directory RocksDB cannot open.
struct StoreDirectory {
    let path: String

    struct Entry: Equatable {
        let name: String
        let size: Int
    }

    /// Regular files directly in the directory, sorted by name; empty if it does not exist.
    func files(in sub: String? = nil) -> [Entry] {
        let dirPath = sub.map { path + "/" + $0 } ?? path
        guard let dir = opendir(dirPath) else { return [] }
        defer { closedir(dir) }
        var out: [Entry] = []
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            var st = stat()
            guard stat(dirPath + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            out.append(Entry(name: name, size: Int(st.st_size)))
        }
        return out.sorted { $0.name < $1.name }
    }

    func exists(_ name: String) -> Bool { access(path + "/" + name, F_OK) == 0 }

    /// Files that only a store writes: SSTs, WALs and MANIFESTs.
    func storeFiles() -> [Entry] {
        files().filter { $0.name.hasSuffix(".sst") || $0.name.hasSuffix(".log") || $0.name.hasPrefix("MANIFEST-") }
    }

    /// SST plus WAL bytes.
    func bytesOnDisk() -> Int {
        files().reduce(0) { $0 + ($1.name.hasSuffix(".sst") || $1.name.hasSuffix(".log") ? $1.size : 0) }
    }
}
