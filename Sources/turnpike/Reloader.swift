import Admin
import Bridges
import Broker
import Dispatch
import Foundation
import Logging

/// The reload SIGHUP runs, and `POST /api/v5/reload` (the admin listener's thread) too: the
/// configuration file with its password and ACL files, TLS material, bridges, rules. One reload
/// at a time (a lock): a SIGHUP arriving during an API reload waits for it, and the other way
/// round. A file that does not load changes nothing of its part, and the report says why.
final class Reloader: @unchecked Sendable {
    private let lock = NSLock()
    private let serve: Serve
    private let broker: Broker
    private let logger: Logger
    private let rulesPath: String
    private let mustExist: Bool
    /// The running bridges' settings, by id (guarded by `lock`).
    private var fingerprints: [String: String]

    init(serve: Serve, broker: Broker, logger: Logger, rulesPath: String, mustExist: Bool, fingerprints: [String: String]) {
        self.serve = serve
        self.broker = broker
        self.logger = logger
        self.rulesPath = rulesPath
        self.mustExist = mustExist
        self.fingerprints = fingerprints
    }

    /// - Parameter trigger: "SIGHUP" or "POST /api/v5/reload", for the log.
    func reload(trigger: String) -> ReloadReport {
        lock.lock()
        defer { lock.unlock() }
        logger.info("\(trigger): reloading the configuration, TLS certificates and rules")
        var report = ReloadReport()
        var removed: [String] = []
        if let fresh = reloadConfiguration(&report) {
            removed = reloadBridges(fresh, &report)
        }
        (report.tlsReloaded, report.tlsFailed) = broker.reloadTLS()
        do {
            let rules = try RuleFiles.load(path: rulesPath, bridges: Set(fingerprints.keys), mustExist: mustExist)
            broker.replaceRules(RuleSet(rules: rules))
            report.rules = .applied
        } catch {
            logger.error("rules not reloaded, the previous rules stay active:\n\(error)")
            report.rules = .failed
            report.rulesError = "\(error)"
        }
        report.ruleNames = broker.activeRules.rules.map(\.name)
        // Bridges the configuration dropped go once no rule names them any more.
        if !removed.isEmpty { removeBridges(removed) }
        return report
    }

    /// The configuration file again (with its password and ACL files). A file that does not
    /// load changes nothing: the running configuration stays, and the error (file, line,
    /// column) is logged and reported.
    private func reloadConfiguration(_ report: inout ReloadReport) -> Serve.Loaded? {
        let fresh: Serve.Loaded
        do {
            fresh = try serve.loadConfiguration()
        } catch {
            logger.error("configuration not reloaded, the running configuration stays: \(error)")
            report.configuration = .failed
            report.configurationError = "\(error)"
            return nil
        }
        let later = broker.applySettings(fresh.cfg)
        logger.info("configuration reloaded: [limits], [auth] (password and ACL files) and [bans] applied")
        if !later.isEmpty {
            logger.warning("configuration reload: changes to \(later.joined(separator: ", ")) take effect at the next restart")
        }
        report.configuration = .applied
        report.needsRestart = later
        return fresh
    }

    /// Bridges: a new table starts a bridge, a removed one stops (a disk buffer's records stay
    /// in the store for when it comes back), a changed one is replaced: the loops switch to the
    /// new bridge, then the old one stops taking requests, waits for those in flight (up to
    /// 5 s) and hands every record it still holds to the new one. Nothing changes when the rule
    /// files would not load with the new set of bridges, or a new bridge does not start.
    /// Returns the ids of the bridges to stop once the new rules are in place.
    private func reloadBridges(_ fresh: Serve.Loaded, _ report: inout ReloadReport) -> [String] {
        let wanted = fresh.bridgeFingerprints
        guard wanted != fingerprints else {
            report.bridges = .unchanged
            return []
        }
        do {
            _ = try RuleFiles.load(path: rulesPath, bridges: Set(wanted.keys), mustExist: mustExist)
        } catch {
            logger.error("bridges not reloaded: the rule files do not load with the new bridges, the running bridges stay:\n\(error)")
            report.bridges = .failed
            report.bridgesError = "the rule files do not load with the new bridges: \(error)"
            return []
        }
        let current = broker.bridges
        var started: [String: any BridgeSink] = [:]
        for d in fresh.bridges where fingerprints[d.id] != wanted[d.id] {
            do {
                started[d.id] = try Bridges.start(d, broker: broker, loops: fresh.cfg.threads, logger: logger)
            } catch {
                logger.error("bridges not reloaded: \(d.id) does not start (\(error)); the running bridges stay")
                for s in started.values { s.stop() }
                report.bridges = .failed
                report.bridgesError = "\(d.id) does not start: \(error)"
                return []
            }
        }
        // Removed bridges stay reachable until the rules that name them are replaced.
        var next = started
        for (id, s) in current where started[id] == nil { next[id] = s }
        let switched = DispatchSemaphore(value: 0)
        broker.replaceBridges(Array(next.values)) { switched.signal() }
        switched.wait()
        var replaced: [String] = []
        for (id, old) in current.sorted(by: { $0.key < $1.key }) {
            guard let new = started[id] else { continue }
            new.restore(old.drain(timeoutMs: 5000), from: "the bridge it replaces")
            replaced.append(id)
        }
        let added = started.keys.filter { current[$0] == nil }.sorted()
        let removed = current.keys.filter { wanted[$0] == nil }.sorted()
        func list(_ ids: [String]) -> String { ids.isEmpty ? "none" : ids.joined(separator: ", ") }
        logger.info("bridges reloaded: \(list(added)) started, \(list(replaced)) replaced, \(list(removed)) to stop")
        fingerprints = wanted
        report.bridges = .applied
        report.bridgesStarted = added
        report.bridgesReplaced = replaced
        report.bridgesStopped = removed
        return removed
    }

    private func removeBridges(_ ids: [String]) {
        let current = broker.bridges
        let switched = DispatchSemaphore(value: 0)
        broker.replaceBridges(current.filter { !ids.contains($0.key) }.map(\.value)) { switched.signal() }
        switched.wait()
        for id in ids {
            current[id]?.stop()
            logger.info("bridge \(id) stopped: the configuration no longer has it")
        }
    }
}
