/// What one reload (SIGHUP or `POST /api/v5/reload`) applied and what it could not. The
/// executable fills it in (Sources/turnpike/Reloader.swift); the API answers it as JSON.
public struct ReloadReport: Sendable {
    public enum Status: String, Sendable {
        /// Loaded and in force.
        case applied
        /// Nothing to do (bridges: the configuration has the same ones).
        case unchanged
        /// Did not load: the running one stays.
        case failed
        /// Not tried, because the configuration file did not load.
        case skipped
    }

    /// The configuration file with its password, ACL and ban files: `[limits]`, `[auth]`, `[bans]`.
    public var configuration: Status = .skipped
    /// File, line and column, as at start.
    public var configurationError: String?
    /// Changed settings that take effect only at the next restart (`[[listeners]]`, `threads`, …).
    public var needsRestart: [String] = []
    /// TLS listeners reloaded ("port 8883") and those whose files failed ("port 8883: …").
    public var tlsReloaded: [String] = []
    public var tlsFailed: [String] = []
    public var rules: Status = .skipped
    public var rulesError: String?
    /// The rules active afterwards (the old ones when the files did not load).
    public var ruleNames: [String] = []
    public var bridges: Status = .skipped
    public var bridgesError: String?
    public var bridgesStarted: [String] = []
    public var bridgesReplaced: [String] = []
    public var bridgesStopped: [String] = []

    public init() {}

    /// Everything loaded (settings needing a restart are not failures).
    public var succeeded: Bool {
        configuration != .failed && rules != .failed && bridges != .failed && tlsFailed.isEmpty
    }

    /// The first failure, for the error's `message`.
    public var firstError: String? {
        if let e = configurationError { return "configuration: " + e }
        if let e = bridgesError { return "bridges: " + e }
        if let e = rulesError { return "rules: " + e }
        if let e = tlsFailed.first { return "TLS: " + e }
        return nil
    }
}
