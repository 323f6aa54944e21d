/// The admin listener (`[admin]` in turnpike.toml): where it listens and who may use it.
public struct AdminConfiguration: Sendable {
    /// An API key and its secret, sent as HTTP Basic credentials (as EMQX's API keys are).
    public struct APIKey: Sendable, Equatable {
        public var key: String
        public var secret: String
        public init(key: String, secret: String) { self.key = key; self.secret = secret }
    }

    public var bind = "127.0.0.1"
    /// 0 lets the kernel choose (the chosen port is logged).
    public var port = 18083
    /// PEM files; both set makes it HTTPS.
    public var certificateFile: String?
    public var privateKeyFile: String?
    public var apiKeys: [APIKey] = []
    /// Bearer tokens (`Authorization: Bearer …`).
    public var tokens: [String] = []
    /// `/metrics` and `/api/v5/prometheus/stats` need credentials too (scrapers usually send none).
    public var metricsAuth = false
    /// Simultaneous HTTP connections; more are refused by the library.
    public var connectionLimit = 64
    /// HTTP threads (libmicrohttpd's thread pool): a slow API call does not hold up a scrape.
    public var threads = 2

    public init() {}

    public var isTLS: Bool { certificateFile != nil && privateKeyFile != nil }
}
