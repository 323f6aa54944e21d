import Foundation

// POST /api/v5/reload: the reload SIGHUP does, run by the executable's hook.

extension AdminAPI {
    /// 200 with what was applied when everything loaded; 400 `RELOAD_FAILED` with the same body
    /// when a file did not (that part keeps its running configuration), plus `code` and
    /// `message`. 503 when this server has no reload hook (tests that embed the API).
    func reload(_ body: [UInt8]) throws(APIError) -> HTTPResponse {
        // No options yet; an empty body or {} is accepted, anything else is a mistake.
        if !body.isEmpty { _ = try Fields(JSON.object(body), allowed: []) }
        guard let hook = reloadHook else { throw .unavailable("this admin listener has no reload hook") }
        let r = hook()
        func part(_ s: ReloadReport.Status, _ error: String?) -> [String: Any] {
            var o: [String: Any] = ["status": s.rawValue]
            if let error { o["error"] = error }
            return o
        }
        var config = part(r.configuration, r.configurationError)
        config["restart_needed"] = r.needsRestart
        var rules = part(r.rules, r.rulesError)
        rules["active"] = r.ruleNames
        var bridges = part(r.bridges, r.bridgesError)
        bridges["started"] = r.bridgesStarted
        bridges["replaced"] = r.bridgesReplaced
        bridges["stopped"] = r.bridgesStopped
        var o: [String: Any] = [
            "applied": r.succeeded, "config": config, "rules": rules, "bridges": bridges,
            "tls": ["status": r.tlsFailed.isEmpty ? "applied" : "failed",
                    "reloaded": r.tlsReloaded, "failed": r.tlsFailed],
        ]
        guard r.succeeded else {
            o["code"] = "RELOAD_FAILED"
            o["message"] = (r.firstError ?? "reload failed") + " (the running configuration stays)"
            return JSON.response(o, status: 400)
        }
        return JSON.response(o)
    }
}
