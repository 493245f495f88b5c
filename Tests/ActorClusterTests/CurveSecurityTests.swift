import ActorCluster
import Distributed
import Testing
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
}
