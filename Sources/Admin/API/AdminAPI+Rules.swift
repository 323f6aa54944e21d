import Broker
import Foundation
import RuleEngine

// /api/v5/rules, /api/v5/rule_test, /api/v5/bridges.

extension AdminAPI {
    func ruleJSON(_ set: RuleSet, _ i: Int, metrics: Bool) -> [String: Any] {
        let r = set.rules[i]
        var o: [String: Any] = [
            "id": r.name, "name": r.name, "sql": r.statement.description, "enable": set.enabled[i],
            "from": r.filters, "file": r.file, "description": "",
            "actions": r.actions.map { a -> [String: Any] in
                var args: [String: Any] = [:]
                for n in a.argumentNames { args[n] = a[argument: n]?.text ?? "" }
                return ["function": Self.actionName(a.target), "args": args]
            },
        ]
        if metrics {
            var m: [String: Any] = [:]
            for (name, value) in set.metrics[i].snapshot { m[name] = value }
            o["metrics"] = m
        }
        return o
    }

    static func actionName(_ t: ActionTarget) -> String {
        switch t {
        case .republish: "republish"
        case .log: "log"
        case .bridge(let kind, let name): "\(kind).\(name)"
        }
    }

    func rules(_ q: [String: String]) throws(APIError) -> HTTPResponse {
        for name in q.keys where !["page", "limit", "enable", "like_id", "like_from"].contains(name) {
            throw .badRequest("unknown query parameter '\(name)'")
        }
        let enable = try choice(q, "enable", ["true", "false"])
        let set = broker.activeRules
        var indices = Array(set.rules.indices)
        if let enable { indices = indices.filter { set.enabled[$0] == (enable == "true") } }
        if let like = q["like_id"] { indices = indices.filter { set.rules[$0].name.contains(like) } }
        if let like = q["like_from"] { indices = indices.filter { set.rules[$0].filters.contains { $0.contains(like) } } }
        return try paged(indices, q) { self.ruleJSON(set, $0, metrics: true) }
    }

    private func ruleIndex(_ set: RuleSet, _ id: String) throws(APIError) -> Int {
        guard let i = set.rules.firstIndex(where: { $0.name == id }) else {
            throw .notFound("NOT_FOUND", "no rule '\(id)'")
        }
        return i
    }

    func rule(_ id: String) throws(APIError) -> HTTPResponse {
        let set = broker.activeRules
        return JSON.response(ruleJSON(set, try ruleIndex(set, id), metrics: true))
    }

    /// Only `enable` can change: a rule's SQL lives in its file (edit it and send SIGHUP).
    func updateRule(_ id: String, _ body: [UInt8]) throws(APIError) -> HTTPResponse {
        let o = try JSON.object(body)
        if o["sql"] != nil || o["actions"] != nil {
            throw .badRequest("a rule's SQL and actions are its file rules/\(id).sql: edit it and send SIGHUP; only 'enable' changes here")
        }
        let f = try Fields(o, allowed: ["enable", "id", "name", "description"])
        guard let enable = try f.bool("enable") else { throw .badRequest("'enable' (true or false) is required") }
        _ = try ruleIndex(broker.activeRules, id)
        guard broker.setRuleEnabled(id, enable) else { throw .notFound("NOT_FOUND", "no rule '\(id)'") }
        let set = broker.activeRules
        return JSON.response(ruleJSON(set, try ruleIndex(set, id), metrics: true))
    }

    /// The rule test of `turnpike rules test`, as EMQX's body: `sql` (a SELECT/FOREACH …
    /// FROM …, or a whole CREATE RULE) and `context` (the sample message). 200 with the row
    /// (a list for FOREACH), 412 when FROM or WHERE do not match, 400 when the SQL is wrong.
    func ruleTest(_ body: [UInt8]) throws(APIError) -> HTTPResponse {
        let f = try Fields(JSON.object(body), allowed: ["sql", "context"])
        guard let sql = try f.string("sql"), !sql.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw .badRequest("'sql' is required")
        }
        let c = try Fields(f.object("context") ?? [:], allowed: ["event_type", "clientid", "username", "topic", "qos",
                                                                 "payload", "peerhost", "retain"])
        let event = try c.string("event_type") ?? "message_publish"
        guard event == "message_publish" else { throw .badRequest("only event_type \"message_publish\" can be tested") }
        let topic = try c.string("topic") ?? "t/1"
        let qos = try c.int("qos") ?? 0
        guard (0...2).contains(qos) else { throw .badRequest("'qos' must be 0, 1 or 2") }

        let whole = sql.trimmingCharacters(in: .whitespacesAndNewlines).uppercased().hasPrefix("CREATE")
        // A bare SELECT gets a name and a do-nothing action on lines of their own, so error
        // positions stay those of the text sent.
        let text = whole ? sql : "CREATE RULE rule_test AS\n\(sql)\nINTO log()"
        let rule: Rule
        do throws(RuleError) {
            rule = try RuleParser.parse(text, file: "sql")
        } catch {
            let line = whole ? error.line : error.line - 1
            throw APIError(status: 400, code: "BAD_SQL", message: "line \(line), column \(error.column): \(error.message)")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let input = RuleInput.publish(id: "", clientid: try c.string("clientid") ?? "c_emqx", username: try c.string("username"),
                                      topic: topic, qos: qos, retain: try c.bool("retain") ?? false,
                                      payload: Array((try c.string("payload") ?? "{}").utf8),
                                      peerhost: try c.string("peerhost") ?? "127.0.0.1", timestamp: now)
        guard rule.accepts(input) else {
            throw APIError(status: 412, code: "NOT_MATCH", message: "FROM \(rule.filters.map { "\"\($0)\"" }.joined(separator: ", ")) does not match topic '\(topic)'")
        }
        let rows: [Value]
        do throws(RuleError) {
            rows = try rule.evaluate(EvaluationContext(input))
        } catch {
            throw APIError(status: 400, code: "EVALUATION_FAILED", message: error.message)
        }
        guard !rows.isEmpty else { throw APIError(status: 412, code: "NOT_MATCH", message: "SQL Not Match (WHERE left no row)") }
        let json = rows.map { Self.rowJSON.render($0) }
        let isForeach: Bool
        if case .foreach = rule.statement.projection { isForeach = true } else { isForeach = false }
        let text2 = isForeach ? "[" + json.joined(separator: ",") + "]" : json[0]
        return HTTPResponse(status: 200, body: Array(text2.utf8))
    }

    /// `${.}`: a row as JSON, as the broker writes republish payloads (the rule engine's JSON
    /// writer is internal; log()'s default message template is that writer).
    static let rowJSON: Template = {
        // A constant rule that parses: cannot fail.
        let rule = try! RuleParser.parse(#"CREATE RULE row_json AS SELECT * FROM "t" INTO log()"#, file: "<builtin>")
        return rule.actions[0][argument: "message"]!
    }()

    // MARK: Bridges

    func bridgeJSON(_ sink: any BridgeSink) -> [String: Any] {
        let parts = sink.id.split(separator: ".", maxSplits: 1).map(String.init)
        var metrics: [String: Any] = [:]
        var status = "connecting"
        for (name, value) in sink.metricsSnapshot() {
            if name == "status" {
                status = value == 1 ? "connected" : value == 2 ? "disconnected" : "connecting"
            } else {
                metrics[name] = value
            }
        }
        return ["id": parts.joined(separator: ":"), "type": parts.first ?? "", "name": parts.count > 1 ? parts[1] : "",
                "status": status, "enable": true, "node": node, "metrics": metrics]
    }

    func bridges() -> HTTPResponse {
        JSON.response(broker.bridges.keys.sorted().map { bridgeJSON(broker.bridges[$0]!) })
    }

    /// `type:name` (EMQX's form) or `type.name` (the rules' form).
    func bridge(_ id: String) throws(APIError) -> HTTPResponse {
        let key = id.replacingOccurrences(of: ":", with: ".")
        guard let sink = broker.bridges[key] else {
            throw .notFound("NOT_FOUND", "no bridge '\(id)' (ids are type:name, e.g. webhook:crm)")
        }
        return JSON.response(bridgeJSON(sink))
    }
}
