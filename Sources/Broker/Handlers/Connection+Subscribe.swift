import EventLoop
import MQTTCodec
import RuleEngine

extension Connection {
    /// SUBSCRIBE (MQTT 3.1.1 §3.8, 5.0 §3.8): one reason code per filter, then retained messages.
    func handleSubscribe(_ s: SubscribePacket) {
        guard let session else { return }
        if limits.strictUTF8, !filtersAreClean(s.subscriptions.lazy.map(\.filter), "SUBSCRIBE") { return }
        let v5 = version == .v5
        let identifier = s.properties.subscriptionIdentifiers.first
        var codes: [ReasonCode] = []
        codes.reserveCapacity(s.subscriptions.count)
        var retainedToSend: [(Subscription, Bool)] = []
        for sub in s.subscriptions {
            guard Topic.isValidFilter(sub.filter), levelCount(sub.filter) <= limits.maxTopicLevels else {
                codes.append(v5 ? .topicFilterInvalid : .v3SubscribeFailure)
                continue
            }
            if currentAuth?.maySubscribe(sub.filter) == false {
                codes.append(v5 ? .notAuthorized : .v3SubscribeFailure)
                continue
            }
            if limits.maxSubscriptionsPerClient > 0, session.subscriptions[sub.filter] == nil,
               session.subscriptions.count >= limits.maxSubscriptionsPerClient {
                codes.append(v5 ? .quotaExceeded : .v3SubscribeFailure)
                continue
            }
            var options = sub.options
            if !v5 {
                // v3 has no such options; make them what v3 semantics imply.
                options.noLocal = false
                options.retainAsPublished = false
                options.retainHandling = 0
            }
            let isNew = broker.subscribe(session, filter: sub.filter, options: options, identifier: identifier)
            codes.append(ReasonCode(options.qos.rawValue))
            retainedToSend.append((Subscription(filter: sub.filter, options: options), isNew))
        }
        if session.isDurable && !retainedToSend.isEmpty { broker.persistSession(session, on: context) }
        if let cluster = broker.cluster, !retainedToSend.isEmpty {
            // In a cluster the SUBACK waits until the other nodes can reach this one for the new
            // filters (and their retained messages are here): a client that publishes on another
            // node once it has the SUBACK is not lost in the gap.
            let me = UncheckedSendable(self)
            let loop = context.loop
            let (packetId, subscribed, reasons) = (s.packetId, UncheckedSendable(retainedToSend), codes)
            cluster.afterInterestRegistered {
                loop.execute {
                    guard me.value.session === session else { return }   // the connection went away meanwhile
                    me.value.finishSubscribe(packetId: packetId, codes: reasons, subscribed: subscribed.value, identifier: identifier)
                }
            }
            return
        }
        finishSubscribe(packetId: s.packetId, codes: codes, subscribed: retainedToSend, identifier: identifier)
    }

    /// SUBACK, the subscription events, then the retained messages.
    private func finishSubscribe(packetId: UInt16, codes: [ReasonCode], subscribed retainedToSend: [(Subscription, Bool)],
                                 identifier: UInt32?) {
        guard let session else { return }
        send(.suback(SubAckPacket(packetId: packetId, reasonCodes: codes)))
        for (sub, _) in retainedToSend {
            let (id, user, peer) = (clientId, username, self.peer)
            broker.fireEvent(.sessionSubscribed, on: context) {
                .session(.sessionSubscribed, clientid: id, username: user, peerhost: peer, topic: sub.filter,
                         qos: Int(sub.options.qos.rawValue), timestamp: Int64(wallClockMicroseconds() / 1000))
            }
        }
        for (sub, isNew) in retainedToSend {
            // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-?, 5.0 §4.8.2].
            if Topic.parseShared(sub.filter) != nil { continue }
            switch sub.options.retainHandling {
            case 0: break
            case 1: if !isNew { continue }
            default: continue
            }
            broker.deliverRetained(to: session, filter: sub.filter, options: sub.options, identifier: identifier)
        }
    }

    /// UNSUBSCRIBE (MQTT 3.1.1 §3.10, 5.0 §3.10).
    func handleUnsubscribe(_ u: UnsubscribePacket) {
        guard let session else { return }
        if limits.strictUTF8, !filtersAreClean(u.filters, "UNSUBSCRIBE") { return }
        var codes: [ReasonCode] = []
        for f in u.filters {
            let existed = broker.unsubscribe(session, filter: f)
            codes.append(existed ? .success : .noSubscriptionExisted)
            if existed {
                let (id, user, peer) = (clientId, username, self.peer)
                broker.fireEvent(.sessionUnsubscribed, on: context) {
                    .session(.sessionUnsubscribed, clientid: id, username: user, peerhost: peer, topic: f,
                             qos: 0, timestamp: Int64(wallClockMicroseconds() / 1000))
                }
            }
        }
        if session.isDurable && codes.contains(.success) { broker.persistSession(session, on: context) }
        send(.unsuback(UnsubAckPacket(packetId: u.packetId, reasonCodes: version == .v5 ? codes : [])))
    }

    /// `[limits] strict_utf8`: a filter with a control character or a non-character makes the
    /// whole packet malformed (v5 DISCONNECT 0x81, v3.1.1 close). Returns false when it did.
    private func filtersAreClean<S: Sequence<String>>(_ filters: S, _ packet: StaticString) -> Bool {
        for f in filters {
            if let bad = StrictUTF8.firstRefused(in: f) {
                protocolViolation(.malformedPacket, "\(packet) topic filter contains \(StrictUTF8.describe(bad)) (strict_utf8)")
                return false
            }
        }
        return true
    }

    /// DISCONNECT from the client (MQTT 3.1.1 §3.14, 5.0 §3.14).
    func handleDisconnect(_ d: DisconnectPacket) {
        if version == .v5, let session, let newExpiry = d.properties.sessionExpiryInterval {
            if session.expiryInterval == 0 && newExpiry != 0 {
                // [MQTT-3.14.2-2]
                protocolViolation(.protocolError, "session expiry set on DISCONNECT after 0 on CONNECT")
                return
            }
            session.expiryInterval = min(newExpiry, limits.maxSessionExpiry)
            session.setDurable(session.expiryInterval > 0)
        }
        // Only reason 0x00 discards the will [MQTT-3.1.2-10]; 0x04 and error codes keep it.
        disconnectedNormally = version != .v5 || d.reasonCode == .normalDisconnection
        if disconnectedNormally { will = nil }
        close(reason: "client sent DISCONNECT (\(d.reasonCode))")
    }
}
