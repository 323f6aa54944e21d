import Cluster
import TOMLKit

extension ConfigFile {
    /// `[cluster]` from the last `load`, or nil: a single node.
    nonisolated(unsafe) static var cluster: ClusterSettings?

    static func loadCluster(_ t: TOMLTable, path: String) throws -> ClusterSettings {
        let at = "[cluster]"
        func bad(_ key: String, _ expected: String) -> Error {
            Error(description: "\(path): invalid value for '\(key)' in \(at): expected \(expected)")
        }
        guard let name = t["node_name"] else { throw Error(description: "\(path): \(at) needs node_name (unique in the cluster)") }
        guard let n = name.string, !n.isEmpty, n.utf8.count <= 64,
              n.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }) else {
            throw bad("node_name", "1 to 64 letters, digits, '-' or '_'")
        }
        guard let urls = t["nats"] else { throw Error(description: "\(path): \(at) needs nats (the NATS cluster's URLs)") }
        guard let list = urls.array, !list.isEmpty else { throw bad("nats", "an array of URLs, e.g. [\"nats://127.0.0.1:4222\"]") }
        var servers: [String] = []
        for v in list {
            guard let s = v.string, s.hasPrefix("nats://") || s.hasPrefix("tls://") else {
                throw bad("nats", "an array of nats:// or tls:// URLs")
            }
            servers.append(s)
        }
        var c = ClusterSettings(nodeName: n, servers: servers)
        for key in t.keys {
            let v = t[key]!
            switch key {
            case "node_name", "nats": continue
            case "subject_prefix":
                guard let s = v.string, !s.isEmpty, s.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != 0x2E && $0 != 0x2A && $0 != 0x3E }) else {
                    throw bad(key, "one NATS token (no '.', '*', '>' or spaces)")
                }
                c.subjectPrefix = s
            case "user": guard let s = v.string else { throw bad(key, "a string") }; c.user = s
            case "password": guard let s = v.string else { throw bad(key, "a string") }; c.password = s
            case "token": guard let s = v.string else { throw bad(key, "a string") }; c.token = s
            case "credentials": guard let s = v.string else { throw bad(key, "a .creds file") }; c.credentialsFile = s
            case "ca_file": guard let s = v.string else { throw bad(key, "a PEM file") }; c.caFile = s
            case "cert_file": guard let s = v.string else { throw bad(key, "a PEM file") }; c.certFile = s
            case "key_file": guard let s = v.string else { throw bad(key, "a PEM file") }; c.keyFile = s
            case "kv_replicas":
                guard let i = v.int, (1...5).contains(i) else { throw bad(key, "1 to 5") }
                c.kvReplicas = i
            case "randomize_servers":
                guard let b = v.bool else { throw bad(key, "true or false") }
                c.randomizeServers = b
            case "node_timeout":
                guard let i = v.int, (1...60).contains(i) else { throw bad(key, "seconds, 1 to 60") }
                c.nodeTimeout = i
            default:
                throw Error(description: "\(path): unknown key '\(key)' in \(at)")
            }
        }
        if (c.certFile == nil) != (c.keyFile == nil) { throw Error(description: "\(path): \(at) needs both cert_file and key_file, or neither") }
        return c
    }
}
