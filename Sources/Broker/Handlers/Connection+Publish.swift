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
            guard alias != 0, Int(alias) <= limits.maxTopicAlias else {
                protocolViolation(.topicAliasInvalid, "topic alias \(alias) outside 1...\(limits.maxTopicAlias) [MQTT-3.3.2-9]")
                return
            }
            if inboundAliases.isEmpty { inboundAliases = Array(repeating: nil, count: limits.maxTopicAlias + 1) }
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
        if levelCount(topic) > limits.maxTopicLevels {
            protocolViolation(.topicNameInvalid, "topic has more than \(limits.maxTopicLevels) levels")
            return
        }
        BrokerStats.add(broker.stats.publishReceived, 1)
        if auth?.mayPublish(topic) == false { // in place: no copy of the compiled rules
            denyPublish(p, topic: topic)
            return
        }

        let now = loop.now
        let message = Message(
            topic: topic, payload: p.payload, qos: p.qos, retain: p.retain,
            properties: version == .v5 ? Message.passthrough(p.properties) : Properties(),
            expiresAt: p.properties.messageExpiryInterval.map { now + UInt64($0) * 1000 },
            publisher: ObjectIdentifier(session), publisherClientId: clientId,
            receivedAt: context.wallClock)

        switch p.qos {
        case .atMostOnce:
            broker.publish(message, from: context)
        case .atLeastOnce:
            let delivered = broker.publish(message, from: context)
            send(.puback(AckPacket(packetId: p.packetId, reasonCode: ackCode(delivered))))
        case .exactlyOnce:
            if session.inboundQoS2.contains(p.packetId) {
                // A resend before PUBREL: acknowledge again, deliver nothing twice [MQTT-4.3.3-10].
                send(.pubrec(AckPacket(packetId: p.packetId)))
                return
            }
            if session.inboundQoS2.count >= limits.receiveMaximum {
                protocolViolation(.receiveMaximumExceeded, "more than \(limits.receiveMaximum) QoS 2 messages awaiting PUBREL [MQTT-3.3.4-9]")
                return
            }
            session.inboundQoS2.insert(p.packetId)
            let delivered = broker.publish(message, from: context)
            send(.pubrec(AckPacket(packetId: p.packetId, reasonCode: ackCode(delivered))))
        }
    }

    private func ackCode(_ delivered: Int) -> ReasonCode {
        version == .v5 && delivered == 0 ? .noMatchingSubscribers : .success
    }

    func handlePubRel(_ a: AckPacket) {
        guard let session else { return }
        let known = session.inboundQoS2.remove(a.packetId) != nil
        send(.pubcomp(AckPacket(packetId: a.packetId, reasonCode: known || version != .v5 ? .success : .packetIdentifierNotFound)))
    }

    func handlePubAck(_ a: AckPacket) {
        guard let session else { return }
        broker.acknowledge(session, packetId: a.packetId, expecting: .awaitingPubAck)
    }

    func handlePubRec(_ a: AckPacket) {
        guard let session else { return }
        guard let i = session.inflight.firstIndex(where: { $0.packetId == a.packetId && $0.qos == .exactlyOnce }) else {
            send(.pubrel(AckPacket(packetId: a.packetId, reasonCode: version == .v5 ? .packetIdentifierNotFound : .success)))
            return
        }
        if a.reasonCode.isError {
            // 5.0 §4.3.3: an error PUBREC ends the exchange; the packet id is free again.
            broker.acknowledge(session, packetId: a.packetId, expecting: .awaitingPubRec)
            return
        }
        session.inflight[i].state = .awaitingPubComp
        send(.pubrel(AckPacket(packetId: a.packetId)))
    }

    func handlePubComp(_ a: AckPacket) {
        guard let session else { return }
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
        return true
    }
}
