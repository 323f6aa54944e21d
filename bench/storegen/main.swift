// storegen COUNT DATA_DIR: writes COUNT stored persistent sessions into DATA_DIR/store, as the
// broker writes them, for bench/durability.py's restart-time measurement.
import Broker
import Glibc

let args = CommandLine.arguments
guard args.count == 3, let n = Int(args[1]), n >= 0 else {
    print("usage: storegen COUNT DATA_DIR")
    exit(2)
}
do {
    try SyntheticSessions.write(count: n, dataDirectory: args[2])
} catch {
    print("storegen: \(error)")
    exit(1)
}
