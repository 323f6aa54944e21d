import EventLoop
import MQTTCodec

extension Connection {
    /// Inbound PUBLISH (MQTT 3.1.1 §3.3, 5.0 §3.3) and its QoS flow.
    func handlePublish(_ p: PublishPacket) {
        guard let session else { return }
        if !p.properties.subscriptionIdentifiers.isEmpty {
            protocolViolation(.protocolError, "PUBLISH from a client carries a subscription identifier [MQTT-3.3.4-6]")
            return
        }
        var topic = p.topic
        if version == .v5, let alias = p.properties.topicAlias {
            guard alias != 0, Int(alias) <= offeredTopicAliasMaximum else {
                protocolViolation(.topicAliasInvalid, "topic alias \(alias) outside 1...\(offeredTopicAliasMaximum) [MQTT-3.3.2-9]")
                return
            }
            if inboundAliases.isEmpty { inboundAliases = Array(repeating: nil, count: offeredTopicAliasMaximum + 1) }
            if topic.isEmpty {
                guard let known = inboundAliases[Int(alias)] else {
                    protocolViolation(.protocolError, "topic alias \(alias) used before it was set")
                    return
                }
                topic = known
            } else {
                inboundAliases[Int(alias)] = topic
            }
        }
        if topic.isEmpty {
            protocolViolation(.protocolError, "PUBLISH without a topic name [MQTT-4.7.3-1]")
            return
        }
        // A new (not resent) PUBLISH: the client is past resending what the last connection left.
        if !p.dup { resendingAfterReconnect = false }
        if limits.strictUTF8, !p.topic.isEmpty, let bad = StrictUTF8.firstRefused(in: p.topic) {
            protocolViolation(.malformedPacket, "PUBLISH topic name contains \(StrictUTF8.describe(bad)) (strict_utf8)")
            return
        }
        if levelCount(topic) > limits.maxTopicLevels {
            protocolViolation(.topicNameInvalid, "topic has more than \(limits.maxTopicLevels) levels")
            return
        }
        BrokerStats.add(broker.stats.publishReceived, 1)
        context.counters.messagesReceived.add(p.qos)
        context.counters.payloadBytesReceived.add(p.qos, p.payload.count)
        receivedPublishes &+= 1
        if currentAuth?.mayPublish(topic) == false {
            context.counters.droppedDenied &+= 1
            denyPublish(p, topic: topic)
            return
        }

        defer { if let full = context.fullBridge { context.fullBridge = nil; waitForBridge(full) } }
        let now = loop.now
        let message = Message(
            topic: topic, payload: p.payload, qos: p.qos, retain: p.retain,
            properties: version == .v5 ? Message.passthrough(p.properties) : Properties(),
            expiresAt: p.properties.messageExpiryInterval.map { now + UInt64($0) * 1000 },
            publisher: ObjectIdentifier(session), publisherClientId: clientId,
            receivedAt: context.wallClock, publisherUsername: username, peerhost: peer)

        // In a cluster `publish` forwards the message before its rules run (which may forward
        // more): it is this loop's next one.
        let forwardedAs: UInt64 = broker.cluster != nil ? context.clusterForwarded &+ 1 : 0
        switch p.qos {
        case .atMostOnce:
            broker.publish(message, from: context)
        case .atLeastOnce:
            guard withinReceiveMaximum(session) else { return }
            context.wroteSinceMark = false
            context.pendingTickets.removeAll(keepingCapacity: true)
            let delivered = broker.publish(message, from: context)
            sendAck(.puback(AckPacket(packetId: p.packetId, reasonCode: ackCode(delivered))), wrote: context.wroteSinceMark,
                    tickets: context.pendingTickets, forwarded: forwardedAs)
        case .exactlyOnce:
            if session.inboundQoS2.contains(p.packetId) {
                // A resend before PUBREL: acknowledge again, deliver nothing twice [MQTT-4.3.3-10].
                sendAck(.pubrec(AckPacket(packetId: p.packetId)), wrote: false)
                return
            }
            guard withinReceiveMaximum(session) else { return }
            session.inboundQoS2.insert(p.packetId)
            context.wroteSinceMark = false
            context.pendingTickets.removeAll(keepingCapacity: true)
            broker.persistInbound(session, p.packetId, add: true, on: context)
            let delivered = broker.publish(message, from: context)
            sendAck(.pubrec(AckPacket(packetId: p.packetId, reasonCode: ackCode(delivered))), wrote: context.wroteSinceMark,
                    tickets: context.pendingTickets, forwarded: forwardedAs)
        }
    }

    /// Receive Maximum is what v5 clients were offered in CONNACK: QoS 1 messages whose PUBACK
    /// waits for the disk plus QoS 2 ones awaiting PUBREL [MQTT-3.3.4-9]. A v3.1.1 client was
    /// offered nothing, and its unreleased ids cost two bytes each.
    private func withinReceiveMaximum(_ session: Session) -> Bool {
        guard version == .v5, heldPubAcks + session.inboundQoS2.count >= offeredReceiveMaximum else { return true }
        protocolViolation(.receiveMaximumExceeded, "more than Receive Maximum \(offeredReceiveMaximum) QoS 1/2 messages unacknowledged [MQTT-3.3.4-9]")
        return false
    }

    /// 0x10 only when this broker knows nobody got it: in a cluster another node may have
    /// subscribers (NATS routes by interest; this node keeps no list of the others').
    private func ackCode(_ delivered: Int) -> ReasonCode {
        version == .v5 && delivered == 0 && broker.cluster == nil ? .noMatchingSubscribers : .success
    }

    // Acknowledgements of the wrong kind (PUBREC/PUBCOMP for a QoS 1 message, PUBACK for a QoS 2
    // one, PUBCOMP before PUBREC) are protocol errors: ignored, they would leave the message
    // inflight, holding a slot of the client's window until the session ends.

    func handlePubRel(_ a: AckPacket) {
        guard let session else { return }
        if session.inboundQoS2.remove(a.packetId) != nil {
            context.wroteSinceMark = false
            broker.persistInbound(session, a.packetId, add: false, on: context)
            sendAck(.pubcomp(AckPacket(packetId: a.packetId)), wrote: context.wroteSinceMark)
        } else if version == .v5 {
            sendAck(.pubcomp(AckPacket(packetId: a.packetId, reasonCode: .packetIdentifierNotFound)), wrote: false)
        } else if resendingAfterReconnect {
            // Our PUBCOMP was lost with the last connection (or with a broker restart) and the
            // client resends its PUBREL [MQTT-4.4.0-1]: complete it again.
            sendAck(.pubcomp(AckPacket(packetId: a.packetId)), wrote: false)
        } else {
            protocolViolation(.protocolError, "PUBREL for packet id \(a.packetId), which no QoS 2 PUBLISH awaits")
        }
    }

    func handlePubAck(_ a: AckPacket) {
        guard let session else { return }
        if let o = session.inflight.first(where: { $0.packetId == a.packetId }), o.qos == .exactlyOnce {
            protocolViolation(.protocolError, "PUBACK for packet id \(a.packetId), which was sent at QoS 2")
            return
        }
        broker.acknowledge(session, packetId: a.packetId, expecting: .awaitingPubAck)
    }

    func handlePubRec(_ a: AckPacket) {
        guard let session else { return }
        guard let i = session.inflight.firstIndex(where: { $0.packetId == a.packetId }) else {
            send(.pubrel(AckPacket(packetId: a.packetId, reasonCode: version == .v5 ? .packetIdentifierNotFound : .success)))
            return
        }
        if session.inflight[i].qos != .exactlyOnce {
            protocolViolation(.protocolError, "PUBREC for packet id \(a.packetId), which was sent at QoS 1")
            return
        }
        if a.reasonCode.isError {
            // 5.0 §4.3.3: an error PUBREC ends the exchange; the packet id is free again.
            broker.acknowledge(session, packetId: a.packetId, expecting: .awaitingPubRec)
            return
        }
        session.inflight[i].state = .awaitingPubComp
        broker.updateDelivery(session, session.inflight[i], on: context)
        send(.pubrel(AckPacket(packetId: a.packetId)))
    }

    func handlePubComp(_ a: AckPacket) {
        guard let session else { return }
        if let o = session.inflight.first(where: { $0.packetId == a.packetId }), o.state != .awaitingPubComp {
            protocolViolation(.protocolError, o.qos == .exactlyOnce
                ? "PUBCOMP for packet id \(a.packetId) before its PUBREC"
                : "PUBCOMP for packet id \(a.packetId), which was sent at QoS 1")
            return
        }
        broker.acknowledge(session, packetId: a.packetId, expecting: .awaitingPubComp)
    }

    /// Sends one application message to this client. Returns false when the client's Maximum
    /// Packet Size rules it out; the caller then treats it as delivered [MQTT-3.1.2-25].
    func sendPublish(_ message: Message, qos: QoS, retain: Bool, packetId: UInt16, dup: Bool, identifiers: [UInt32]) -> Bool {
        var packet = PublishPacket(dup: dup, qos: qos, retain: retain, topic: message.topic,
                                   packetId: packetId, payload: message.payload)
        if version == .v5 {
            packet.properties = message.properties
            packet.properties.messageExpiryInterval = message.remainingExpiry(now: loop.now)
            packet.properties.subscriptionIdentifiers = identifiers
        }
        if PacketEncoder.size(of: .publish(packet), version: version) > clientMaximumPacketSize {
            return false
        }
        if clientTopicAliasMaximum > 0 {
            if let alias = outboundAliases[message.topic] {
                packet.topic = ""
                packet.properties.topicAlias = alias
            } else if outboundAliases.count < Int(clientTopicAliasMaximum) {
                let alias = UInt16(outboundAliases.count + 1)
                outboundAliases[message.topic] = alias
                packet.properties.topicAlias = alias
            }
        }
        if packet.payload.count >= WriteQueue.largePayload {
            sendLargePublish(packet)
        } else {
            send(.publish(packet))
        }
        BrokerStats.add(broker.stats.publishSent, 1)
        context.counters.messagesSent.add(qos)
        context.counters.payloadBytesSent.add(qos, message.payload.count)
        sentPublishes &+= 1
        broker.fireMessageEvent(.messageDelivered, message, to: session, on: context)
        return true
    }
}

extension Connection {
    /// The bridge this client's messages feed is full (`on_full = backpressure`): its socket is
    /// not read until the bridge has room, so TCP pushes back on the client and nothing is
    /// dropped. Checked every 50 ms.
    func waitForBridge(_ sink: any BridgeSink) {
        if publishRate == nil { publishRate = PublishRate(messages: 0, bytes: 0, now: loop.now) }
        let rate = publishRate!
        if rate.bridgeTimer == nil {
            rate.bridgeTimer = LoopTimer { [unowned self] in
                guard let r = self.publishRate, let s = r.waitingFor else { return }
                if s.wantsBackpressure, self.state != .closed {
                    self.loop.schedule(r.bridgeTimer!, afterMilliseconds: 50)
                    return
                }
                r.waitingFor = nil
                self.resumeAfterThrottle(.bridgeFull)
            }
        }
        if rate.waitingFor == nil {
            if rate.lastLog == 0 || loop.now >= rate.lastLog + 10_000 {
                rate.lastLog = loop.now
                logger.notice("client \(clientId): bridge \(sink.id) is full (on_full = backpressure); not reading its messages until it has room (logged at most every 10 s)")
            }
            rate.waitingFor = sink
            pauseReading(.bridgeFull)
            loop.schedule(rate.bridgeTimer!, afterMilliseconds: 50)
        }
    }
}

/// A client's publish rate limits (`max_publish_rate`, `max_publish_bytes_rate`): token buckets
/// allocated once per connection, and only when a limit is configured (a reference: an idle
/// connection without limits carries 8 bytes for it, not ~90).
final class PublishRate {
    var messages: TokenBucket?
    var bytes: TokenBucket?
    /// Resumes reading after a throttle pause; made on the first one.
    var timer: LoopTimer?
    /// Checks whether the full bridge this client waits for has room again.
    var bridgeTimer: LoopTimer?
    var waitingFor: (any BridgeSink)?
    /// When reading last resumed after a pause: a pause within a second of it continues the
    /// same throttle episode (counted and logged once).
    var lastResume: UInt64 = 0
    var lastLog: UInt64 = 0

    init(messages: Int, bytes: Int, now: UInt64) {
        if messages > 0 { self.messages = TokenBucket(rate: messages, now: now) }
        if bytes > 0 { self.bytes = TokenBucket(rate: bytes, now: now) }
    }
}

extension Connection {
    /// Charges one handled PUBLISH of `bytes` (fixed header included) to the rate limits. Past
    /// them the socket is not read until the buckets are back to zero: TCP pushes back on the
    /// client, and nothing it already sent is dropped.
    func chargePublish(bytes n: Int) {
        let now = loop.now
        publishRate!.messages?.take(1, now: now)
        publishRate!.bytes?.take(n, now: now)
        let waitMessages = publishRate!.messages?.millisecondsUntil(0, now: now) ?? 0
        let waitBytes = publishRate!.bytes?.millisecondsUntil(0, now: now) ?? 0
        let wait = max(waitMessages, waitBytes)
        guard wait > 0 else { return }

        let timer = publishRate!.timer ?? LoopTimer { [unowned self] in
            self.publishRate?.lastResume = self.loop.now
            self.resumeAfterThrottle()
        }
        publishRate!.timer = timer
        let rate = publishRate!
        if rate.lastResume == 0 || now >= rate.lastResume + 1000 {
            BrokerStats.add(broker.stats.publishThrottled, 1)
            if rate.lastLog == 0 || now >= rate.lastLog + 10_000 {
                publishRate!.lastLog = now
                let limit = waitBytes >= waitMessages
                    ? "max_publish_bytes_rate \(limits.maxPublishBytesRate) B/s"
                    : "max_publish_rate \(limits.maxPublishRate)/s"
                logger.notice("client \(clientId): publishing faster than \(limit); throttled (its socket is read more slowly; logged at most every 10 s)")
            }
        }
        pauseReading(.throttled)
        loop.schedule(timer, afterMilliseconds: wait)
    }
}
