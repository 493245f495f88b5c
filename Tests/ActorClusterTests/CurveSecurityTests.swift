import ActorCluster
import Distributed
import Testing
import TestLogs
import Wire
import ZeroMQ

/// `security`: CURVE on every socket, a ZAP handler with an enforced domain, and an
/// allow-list of node keys.
@Suite("CURVE security")
struct CurveSecurityTests {
    struct Keys {
        let server = try! ZMQCurveKeyPair.generate()
        let member = try! ZMQCurveKeyPair.generate()
        let serverNode = try! ZMQCurveKeyPair.generate()
        let intruder = try! ZMQCurveKeyPair.generate()
    }

    private func secured(_ name: String, node: ZMQCurveKeyPair, keys: Keys) -> ClusterSystemConfiguration {
        var configuration = testConfiguration(name)
        configuration.security = .init(serverKeyPair: keys.server, nodeKeyPair: node,
                                       allowedPublicKeys: [keys.member.publicKey, keys.serverNode.publicKey])
        return configuration
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func anAllowedNodeIsAdmittedAndCallsGoThrough() async throws {
        let keys = Keys()
        let logs = CapturedLogs()
        let (server, serverActor) = try await startNode("server", configuration: secured("server", node: keys.serverNode, keys: keys), logs: logs)
        let (member, _) = try await startNode("member", configuration: secured("member", node: keys.member, keys: keys))
        defer { withExtendedLifetime(serverActor) {} }
        do {
            _ = try await member.join(server.identity.endpoint, timeout: .seconds(5))
            let remote = try DiagnosticsActor.resolve(id: serverActor.id, using: member)
            #expect(try await remote.echo(echoRequest(7)).sequence == 7)
            #expect(server.refusedConnectionCount == 0)
        } catch {
            await member.shutdown()
            await server.shutdown()
            throw error
        }
        await member.shutdown()
        await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func aKeyOutsideTheAllowListOrNoKeyGetsNothingThrough() async throws {
        let keys = Keys()
        let logs = CapturedLogs()
        let (server, serverActor) = try await startNode("server", configuration: secured("server", node: keys.serverNode, keys: keys), logs: logs)
        // Knows the server key, but its own key is not on the list.
        let (intruder, _) = try await startNode("intruder", configuration: secured("intruder", node: keys.intruder, keys: keys))
        // No CURVE at all.
        let (plain, _) = try await startNode("plain")
        defer { withExtendedLifetime(serverActor) {} }
        await #expect(throws: ClusterError.self) { _ = try await intruder.join(server.identity.endpoint, timeout: .milliseconds(1500)) }
        await #expect(throws: ClusterError.self) { _ = try await plain.join(server.identity.endpoint, timeout: .milliseconds(1500)) }
        // Nothing got through: the server never saw either node, and both refusals are logged.
        #expect(server.upNodes.isEmpty)
        #expect(intruder.receptionist.lookup(DiagnosticsActor.key).allSatisfy { $0.id.node != server.identity })
        let refusals = logs.all.filter { $0.message == "Refused a connection" }
        #expect(refusals.contains { $0.metadata["peer.key"] == keys.intruder.publicKey && $0.metadata["reason"]?.contains("allow-list") == true })
        // The plain node's attempts fail the handshake (libzmq reports a protocol error, or no
        // detail when the client hangs up first): logged by the server's handshake monitor.
        try await eventually("the plain node's refusal is logged") {
            logs.all.contains { $0.message == "Refused a connection" && $0.metadata["server"] != nil && $0.metadata["reason"]?.hasPrefix("handshake failed") == true }
        }
        #expect(server.refusedConnectionCount >= 2)
        await intruder.shutdown()
        await plain.shutdown()
        await server.shutdown()
    }

    /// The servers' key pair plus two members: `member` (may register only under `samplers`)
    /// and `other`, each known by name.
    private func members(_ keys: Keys) -> [String: ClusterSystemConfiguration.Security.Member] {
        [keys.member.publicKey: .init(name: "member", receptionKeys: ["samplers"]),
         keys.intruder.publicKey: .init(name: "other", receptionKeys: ["samplers"]),
         keys.serverNode.publicKey: .init(name: "server")]
    }

    private func member(_ name: String, node: ZMQCurveKeyPair, keys: Keys) -> ClusterSystemConfiguration {
        var configuration = testConfiguration(name)
        configuration.security = .init(serverKeyPair: keys.server, nodeKeyPair: node, members: members(keys))
        return configuration
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func aMembersKeyNamesItsCallsAndLimitsItsRegistrations() async throws {
        let keys = Keys()
        let logs = CapturedLogs()
        let (server, serverDiagnostics) = try await startNode("server", configuration: member("server", node: keys.serverNode, keys: keys), logs: logs)
        let (client, clientDiagnostics) = try await startNode("member", configuration: member("member", node: keys.member, keys: keys))
        defer { withExtendedLifetime((serverDiagnostics, clientDiagnostics)) {} }
        do {
            try await server.register(CallerProbeActor.self)
            try await client.register(CallerProbeActor.self)
            let serverProbe = CallerProbeActor(actorSystem: server)
            let clientProbe = CallerProbeActor(actorSystem: client)
            // The member's probe checks in under the one key it may use; its diagnostics actor
            // (checked in under `diagnostics` by startNode) may not.
            try client.receptionist.checkIn(clientProbe, with: ReceptionKey<CallerProbeActor>("samplers"))
            _ = try await client.join(server.identity.endpoint, timeout: .seconds(5))

            // A call over the member's own connection names the member by its key.
            let fromMember = try await CallerProbeActor.resolve(id: serverProbe.id, using: client).who(Selfimprove_V1_Empty())
            #expect(fromMember.nodeName == "member")
            #expect(String(decoding: fromMember.payload, as: UTF8.self).hasPrefix("accepted, \(client.identity.endpoint)"))
            // A call back over that connection is one the member dialled: no key names the
            // caller, the address it dialled does.
            let fromServer = try await CallerProbeActor.resolve(id: clientProbe.id, using: server).who(Selfimprove_V1_Empty())
            #expect(fromServer.nodeName == "")
            #expect(String(decoding: fromServer.payload, as: UTF8.self) == "dialled, \(server.identity.endpoint)")

            try await eventually("the member's sampler entry is listed") {
                server.receptionist.lookup(ReceptionKey<CallerProbeActor>("samplers")).contains { $0.id == clientProbe.id }
            }
            #expect(!server.receptionist.lookup(DiagnosticsActor.key).contains { $0.id.node == client.identity })
            let refusal = logs.all.first { $0.message == "Refused registrations under keys this member may not use" }
            #expect(refusal?.metadata["member"] == "member" && refusal?.metadata["keys"] == DiagnosticsActor.key.name)
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
        await client.shutdown()
        await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func aMemberCannotClaimAnotherMembersEndpoint() async throws {
        let keys = Keys()
        let logs = CapturedLogs()
        let (server, serverDiagnostics) = try await startNode("server", configuration: member("server", node: keys.serverNode, keys: keys), logs: logs)
        let (client, clientDiagnostics) = try await startNode("member", configuration: member("member", node: keys.member, keys: keys))
        defer { withExtendedLifetime((serverDiagnostics, clientDiagnostics)) {} }
        do {
            _ = try await client.join(server.identity.endpoint, timeout: .seconds(5))
            // Member `other` connects with its own key and claims the first member's endpoint.
            var options = ZMQSocketOptions()
            options.curve = .init(keyPair: keys.intruder, serverPublicKey: keys.server.publicKey)
            let replies = try await rawExchange(endpoint: server.identity.endpoint, send: [try wireMessage(fakeHandshake(endpoint: client.identity.endpoint))],
                                                replies: 1, timeout: .milliseconds(1500), options: options)
            #expect(replies.isEmpty, "the claim was answered")
            let ignored = logs.all.first { $0.message == "Ignored a handshake that claims another node's endpoint" }
            #expect(ignored?.metadata["member"] == "other")
            #expect(ignored?.metadata["reason"]?.contains("belongs to member 'member'") == true)
            // The real member stays up: the claim did not pass for a restart.
            #expect(server.upNodes.contains(client.identity))
            #expect(!logs.all.contains { $0.message == "Node down" })
        } catch {
            await client.shutdown()
            await server.shutdown()
            throw error
        }
        await client.shutdown()
        await server.shutdown()
    }
}
