import ActorCluster
import Distributed
import Foundation
import Testing
import TestLogs
import Wire

@Suite("Remote calls between two nodes")
struct RemoteCallTests {
    @Test(.timeLimit(.minutes(1)))
    func echoRoundTrip() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            let reply = try await remote.echo(echoRequest(7, size: 64))
            #expect(reply.sequence == 7)
            #expect(reply.payload == echoRequest(7, size: 64).payload)
            #expect(reply.nodeName == "node-1")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func tenThousandConcurrentCallsEachGetTheirOwnReply() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                for sequence in 0 ..< 10_000 {
                    group.addTask {
                        let request = echoRequest(UInt64(sequence), size: 8)
                        let reply = try await remote.echo(request)
                        return reply.sequence == request.sequence && reply.payload == request.payload ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(mismatches == 0)
            let status = try await remote.status()
            #expect(status.callsServed >= 10_000)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func eightMebibyteArgumentArrivesWhole() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            let request = echoRequest(1, size: 8 << 20)
            let reply = try await remote.echo(request)
            #expect(reply.payload.count == 8 << 20)
            #expect(reply.payload == request.payload)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func oversizedCallIsRefusedBeforeSending() async throws {
        try await withNodes(2, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.maxMessageSize = 1 << 20
            return configuration
        }) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            await #expect(throws: ClusterError.self) {
                _ = try await remote.echo(echoRequest(1, size: 2 << 20))
            }
            do {
                _ = try await remote.echo(echoRequest(1, size: 2 << 20))
            } catch let error as ClusterError {
                #expect(error.code == .messageTooLarge)
            }
            let reply = try await remote.echo(echoRequest(2))
            #expect(reply.sequence == 2)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func callTimesOutWithDefaultAndPerCallTimeouts() async throws {
        try await withNodes(2, configure: { index in
            var configuration = testConfiguration("node-\(index)")
            configuration.callTimeout = .milliseconds(300)
            return configuration
        }) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            var request = Selfimprove_V1_SleepRequest()
            request.milliseconds = 5000
            do {
                _ = try await remote.sleep(request)
                Issue.record("sleep(5 s) returned despite a 300 ms call timeout")
            } catch let error as ClusterError {
                #expect(error.code == .timeout)
            }
            // Giving up on a call cancels it on the callee too.
            try await eventually("the timed-out sleep is cancelled") { try await remote.status().sleeping == 0 }
            // A longer per-call timeout lets a 500 ms sleep finish.
            request.milliseconds = 500
            _ = try await ClusterSystem.withCallTimeout(.seconds(10)) {
                try await remote.sleep(request)
            }
            // A shorter per-call timeout cuts a call the default would allow.
            request.milliseconds = 250
            do {
                _ = try await ClusterSystem.withCallTimeout(.milliseconds(50)) {
                    try await remote.sleep(request)
                }
                Issue.record("a 50 ms per-call timeout did not apply")
            } catch let error as ClusterError {
                #expect(error.code == .timeout)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func remoteThrowComesBackTyped() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            var request = Selfimprove_V1_FailRequest()
            request.message = "disk on fire"
            do {
                try await remote.fail(request)
                Issue.record("fail() returned")
            } catch let error as RemoteCallError {
                #expect(error.code == RemoteCallError.remoteThrew)
                #expect(error.typeName.hasSuffix("DiagnosticsError"))
                #expect(error.message.contains("disk on fire"))
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func unknownMethodUnknownActorAndWrongArityComeBackAsErrors() async throws {
        try await withNodes(2) { nodes in
            // A node that knows Diagnostics.echo as a two-argument method: a peer built from
            // other code. (One node cannot hold two meanings of a wire name.)
            let impostorNode = try await ClusterSystem.start(configuration: testConfiguration("impostor"), logger: CapturedLogs().logger())
            do {
                try await impostorNode.register(ImpostorActor.self)
                let impostor = try ImpostorActor.resolve(id: nodes[1].diagnostics.id, using: impostorNode)
                do {
                    _ = try await impostor.missing(echoRequest(1))
                    Issue.record("unknown method answered")
                } catch let error as RemoteCallError {
                    #expect(error.code == RemoteCallError.methodUnknown)
                }
                do {
                    _ = try await impostor.echoWithTwoArguments(echoRequest(1), echoRequest(2))
                    Issue.record("wrong argument count answered")
                } catch let error as RemoteCallError {
                    #expect(error.code == RemoteCallError.argumentsInvalid)
                    #expect(error.message.contains("takes 1 argument"))
                }
            } catch {
                await impostorNode.shutdown()
                throw error
            }
            await impostorNode.shutdown()

            var missingID = nodes[1].diagnostics.id
            missingID.name = "NoSuchActor-99"
            let ghost = try DiagnosticsActor.resolve(id: missingID, using: nodes[0].system)
            do {
                _ = try await ghost.echo(echoRequest(1))
                Issue.record("unknown actor answered")
            } catch let error as RemoteCallError {
                #expect(error.code == RemoteCallError.actorNotFound)
            }
            // The callee is unharmed.
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            #expect(try await remote.echo(echoRequest(3)).sequence == 3)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func unregisteredMethodFailsOnTheCallersSide() async throws {
        try await withNodes(2) { nodes in
            let ghost = try UnregisteredActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            do {
                _ = try await ghost.ping(Selfimprove_V1_Empty())
                Issue.record("unregistered method was sent")
            } catch let error as ClusterError {
                #expect(error.code == .unregisteredMethod)
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheCallerEndsTheCall() async throws {
        try await withNodes(2) { nodes in
            let remote = try DiagnosticsActor.resolve(id: nodes[1].diagnostics.id, using: nodes[0].system)
            let call = Task {
                var request = Selfimprove_V1_SleepRequest()
                request.milliseconds = 30_000
                _ = try await remote.sleep(request)
            }
            try await eventually("the callee is sleeping") { try await remote.status().sleeping == 1 }
            call.cancel()
            let result = await call.result
            #expect(throws: CancellationError.self) { try result.get() }
            // The callee was told, and stopped working on it.
            try await eventually("the callee's sleep is cancelled") { try await remote.status().sleeping == 0 }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func localActorsResolveToThemselvesAndResignedOnesAreGone() async throws {
        try await withNodes(1) { nodes in
            let system = nodes[0].system
            let resolved = try DiagnosticsActor.resolve(id: nodes[0].diagnostics.id, using: system)
            #expect(resolved === nodes[0].diagnostics)
            var transient: DiagnosticsActor? = DiagnosticsActor(actorSystem: system)
            let id = try #require(transient?.id)
            transient = nil
            #expect(throws: ClusterError.self) { _ = try DiagnosticsActor.resolve(id: id, using: system) }
            await system.terminated(id)
        }
    }
}
