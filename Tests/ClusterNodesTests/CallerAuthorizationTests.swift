import ActorCluster
import ClusterNodes
import Distributed
import Foundation
import SelfImproveCore
import Synchronization
import TestFiles
import Testing
import TestLogs
import Wire
import ZeroMQ

/// With CURVE, a member's key is its name and role: coordinator, trainer, samplers and a
/// verifier run in this process on their own keys, and members that try another's part (a
/// forged `finish`, records from a sampler, a registration under another role, a lease taken
/// over under another sampler's name) are refused and logged, while the real calls go through.
@Suite("Caller authorization", .serialized)
struct CallerAuthorizationTests {
    static let synthetic = ClusterConfigTests.clusterFolder.appendingPathComponent("synthetic.yaml").path

    /// A node of `config` in this process, on its own key.
    private func start(_ name: String, role: ClusterConfig.Role, config: ClusterConfig, logs: CapturedLogs) async throws -> ClusterSystem {
        guard let address = config.nodes.first(where: { $0.address.name == name })?.address else { throw CancellationError() }
        var settings = NodeRunner.systemConfiguration(config, address, role: role)
        settings.bindEndpoint = "tcp://127.0.0.1:*"
        settings.security = try ClusterKeys.security(for: name, config: config)
        let system = try await ClusterSystem.start(configuration: settings, logger: logs.logger())
        try await NodeRunner.registerRoles(on: system)
        return system
    }

    /// Polls `lookup` until it finds an actor (bounded: 5 s).
    private func found<Act>(_ lookup: () -> [Act]) async throws -> Act {
        for _ in 0 ..< 250 {
            if let actor = lookup().first { return actor }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ClusterError(.actorNotFound, "not listed within 5 s")
    }

    private func isUnauthorized(_ error: any Error) -> Bool {
        (error as? RemoteCallError)?.typeName == "Unauthorized"
    }

    @Test(.timeLimit(.minutes(1)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE"))
    func membersCannotActAsAnotherRole() async throws {
        let folder = try TestFiles.temporaryFolder("callers")
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try ClusterConfig.load(file: Self.synthetic, overrides: [
            "security.curve=true", "security.keys=\(folder.appendingPathComponent("keys").path)",
        ], output: folder.appendingPathComponent("run").path)
        _ = try ClusterKeys.generateMissing(for: config)
        try FileManager.default.createDirectory(at: config.output, withIntermediateDirectories: true)
        let samplers = config.samplers.map(\.address.name)
        try #require(samplers.count >= 2 && !config.verifiers.isEmpty)
        let logs = CapturedLogs()

        let coordinatorNode = try await start(config.coordinator.address.name, role: .coordinator, config: config, logs: logs)
        let trainerNode = try await start(config.trainer.address.name, role: .trainer, config: config, logs: logs)
        let samplerNode = try await start(samplers[0], role: .sampler, config: config, logs: logs)
        let otherSamplerNode = try await start(samplers[1], role: .sampler, config: config, logs: logs)
        let verifierNode = try await start(config.verifiers[0].address.name, role: .verifier, config: config, logs: logs)
        let nodes = [coordinatorNode, trainerNode, samplerNode, otherSamplerNode, verifierNode]
        do {
            let coordinator = try CoordinatorActor(config: config, logger: logs.logger(), actorSystem: coordinatorNode)
            try coordinatorNode.receptionist.checkIn(coordinator, with: CoordinatorActor.key)
            let finished = Atomic<Int>(0)
            let trainer = try TrainerActor(
                folder: config.output, prompts: PromptBuilder(exemplars: config.prompt.exemplars), formats: config.trainer.formats,
                callers: CallerChecks(config: config, coordinatorEndpoint: coordinatorNode.identity.endpoint), logger: logs.logger(),
                actorSystem: trainerNode, onFinish: { finished.add(1, ordering: .relaxed) })
            try trainerNode.receptionist.checkIn(trainer, with: TrainerActor.key)
            for node in [trainerNode, samplerNode, otherSamplerNode, verifierNode] {
                _ = try await node.join(coordinatorNode.identity.endpoint, timeout: .seconds(5))
            }

            // A sampler's key registering as the trainer: refused by the coordinator's node.
            let posing = DiagnosticsActor(actorSystem: otherSamplerNode)
            try otherSamplerNode.receptionist.checkIn(posing, with: ReceptionKey<DiagnosticsActor>(TrainerActor.key.name))
            _ = try await found { coordinatorNode.receptionist.lookup(TrainerActor.key) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(coordinatorNode.receptionist.lookup(TrainerActor.key).map(\.id) == [trainer.id])
            #expect(logs.all.contains { $0.message == "Refused registrations under keys this member may not use" && $0.metadata["member"] == samplers[1] })

            // A sampler that dials the trainer cannot finish it or append records to it.
            _ = try await otherSamplerNode.join(trainerNode.identity.endpoint, timeout: .seconds(5))
            let trainerFromSampler = try TrainerActor.resolve(id: trainer.id, using: otherSamplerNode)
            await #expect(throws: RemoteCallError.self) { _ = try await trainerFromSampler.finish() }
            await #expect(throws: RemoteCallError.self) { _ = try await trainerFromSampler.append(Selfimprove_V1_EncodedRecordBatch()) }
            do { _ = try await trainerFromSampler.finish() } catch { #expect(isUnauthorized(error), "\(error)") }
            #expect(finished.load(ordering: .relaxed) == 0)
            #expect(logs.all.filter { $0.message == "Refused a call only the coordinator may make" }.count >= 3)

            // A sampler takes a lease under its own name; another sampler's key cannot complete
            // it under that name, and a verifier's key cannot act as a sampler at all.
            let fromSampler = try CoordinatorActor.resolve(id: coordinator.id, using: samplerNode)
            var request = Selfimprove_V1_WorkRequest()
            request.sampler = samplers[0]
            request.node = samplers[0]
            request.pool = config.samplers[0].pool
            request.credits = 1
            var granted: Selfimprove_V1_WorkLease?
            for _ in 0 ..< 250 where granted == nil {
                // The first questions' work is added a moment after the first request.
                granted = try await fromSampler.requestWork(request).leases.first
                if granted == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let lease = try #require(granted)
            var forged = request
            var submission = Selfimprove_V1_PathSubmission()
            submission.leaseID = lease.leaseID
            submission.sampler = samplers[0]
            submission.paths = lease.indices.map { _ in
                var path = Selfimprove_V1_GeneratedPath()
                path.text = "The answer is 0."
                return path
            }
            forged.submissions = [submission]
            forged.credits = 0
            let fromOther = try CoordinatorActor.resolve(id: coordinator.id, using: otherSamplerNode)
            do {
                _ = try await fromOther.requestWork(forged)
                Issue.record("another sampler's key completed a lease under sampler \(samplers[0])'s name")
            } catch { #expect(isUnauthorized(error), "\(error)") }
            let fromVerifier = try CoordinatorActor.resolve(id: coordinator.id, using: verifierNode)
            var verifierRequest = request
            verifierRequest.sampler = "verifier-posing-as-sampler"
            do {
                _ = try await fromVerifier.requestWork(verifierRequest)
                Issue.record("a verifier's key was granted work")
            } catch { #expect(isUnauthorized(error), "\(error)") }
            #expect(logs.all.filter { $0.message.contains("call refused: the caller may not act as this sampler") }.count == 2)

            // The coordinator's own finish goes through.
            let trainerFromCoordinator = try TrainerActor.resolve(id: trainer.id, using: coordinatorNode)
            _ = try await trainerFromCoordinator.finish()
            #expect(finished.load(ordering: .relaxed) == 1)
            withExtendedLifetime((coordinator, trainer, posing)) {}
        } catch {
            for node in nodes { await node.shutdown() }
            throw error
        }
        for node in nodes { await node.shutdown() }
    }

    /// Without CURVE nothing proves who connected, but a node that claims the coordinator's
    /// endpoint is still not the coordinator to a trainer that reaches the real one over its
    /// own connection: the claim is ignored and the forged `finish` refused.
    @Test(.timeLimit(.minutes(1)))
    func withoutCurveAClaimOfTheCoordinatorsEndpointCannotFinishTheTrainer() async throws {
        let folder = try TestFiles.temporaryFolder("callers")
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try ClusterConfig.load(file: Self.synthetic, output: folder.path)
        try FileManager.default.createDirectory(at: config.output, withIntermediateDirectories: true)
        let logs = CapturedLogs()
        let coordinatorNode = try await start(config.coordinator.address.name, role: .coordinator, config: config, logs: logs)
        let trainerNode = try await start(config.trainer.address.name, role: .trainer, config: config, logs: logs)
        var claim = NodeRunner.systemConfiguration(config, config.samplers[0].address, role: .sampler)
        claim.bindEndpoint = "tcp://127.0.0.1:*"
        claim.advertisedEndpoint = coordinatorNode.identity.endpoint
        let impostorNode = try await ClusterSystem.start(configuration: claim, logger: CapturedLogs().logger())
        try await NodeRunner.registerRoles(on: impostorNode)
        let nodes = [coordinatorNode, trainerNode, impostorNode]
        do {
            let finished = Atomic<Int>(0)
            let trainer = try TrainerActor(
                folder: config.output, prompts: PromptBuilder(exemplars: config.prompt.exemplars), formats: config.trainer.formats,
                callers: CallerChecks(config: config, coordinatorEndpoint: coordinatorNode.identity.endpoint), logger: logs.logger(),
                actorSystem: trainerNode, onFinish: { finished.add(1, ordering: .relaxed) })
            _ = try await trainerNode.join(coordinatorNode.identity.endpoint, timeout: .seconds(5))
            // The impostor's handshake is ignored, so it never associates...
            await #expect(throws: ClusterError.self) { _ = try await impostorNode.join(trainerNode.identity.endpoint, timeout: .seconds(1)) }
            // ...and its call, made anyway, is refused.
            do {
                _ = try await TrainerActor.resolve(id: trainer.id, using: impostorNode).finish()
                Issue.record("the forged finish went through")
            } catch { #expect(isUnauthorized(error), "\(error)") }
            #expect(finished.load(ordering: .relaxed) == 0)
            #expect(logs.all.contains { $0.message == "Ignored a handshake that claims another node's endpoint" })
            #expect(trainerNode.upNodes.contains(coordinatorNode.identity))
            _ = try await TrainerActor.resolve(id: trainer.id, using: coordinatorNode).finish()
            #expect(finished.load(ordering: .relaxed) == 1)
            withExtendedLifetime(trainer) {}
        } catch {
            for node in nodes { await node.shutdown() }
            throw error
        }
        for node in nodes { await node.shutdown() }
    }

    @Test func theCoordinatorIsRecognisedByItsConnection() {
        let plain = CallerChecks(coordinatorEndpoint: "tcp://10.0.0.1:7000", coordinatorMember: "coordinator", curve: false, samplerMembers: ["sampler-1"])
        let curve = CallerChecks(coordinatorEndpoint: "tcp://10.0.0.1:7000", coordinatorMember: "coordinator", curve: true, samplerMembers: ["sampler-1"])
        let dialled = CallerIdentity(connection: .dialled, endpoint: "tcp://10.0.0.1:7000", member: nil)
        let dialledElsewhere = CallerIdentity(connection: .dialled, endpoint: "tcp://10.0.0.2:7000", member: nil)
        let claiming = CallerIdentity(connection: .accepted, endpoint: "tcp://10.0.0.1:7000", member: nil)
        let keyed = CallerIdentity(connection: .accepted, endpoint: "tcp://10.0.0.9:1", member: "coordinator")
        let samplerKey = CallerIdentity(connection: .accepted, endpoint: "tcp://10.0.0.1:7000", member: "sampler-1")
        #expect(plain.refusalUnlessCoordinator(nil, method: "m") == nil)
        #expect(plain.refusalUnlessCoordinator(dialled, method: "m") == nil && curve.refusalUnlessCoordinator(dialled, method: "m") == nil)
        #expect(plain.refusalUnlessCoordinator(dialledElsewhere, method: "m") != nil)
        // Without CURVE the claim is all there is; with it, only the key counts.
        #expect(plain.refusalUnlessCoordinator(claiming, method: "m") == nil)
        #expect(curve.refusalUnlessCoordinator(claiming, method: "m") != nil)
        #expect(curve.refusalUnlessCoordinator(keyed, method: "m") == nil)
        #expect(curve.refusalUnlessCoordinator(samplerKey, method: "m")?.contains("not the coordinator") == true)

        let names = SamplerNameBinding()
        #expect(plain.refusalUnlessSampler(keyed, claiming: "anyone", names: names) == nil)
        #expect(curve.refusalUnlessSampler(samplerKey, claiming: "sampler-1-pod-a", names: names) == nil)
        #expect(curve.refusalUnlessSampler(samplerKey, claiming: "sampler-1-pod-a", names: names) == nil)
        #expect(curve.refusalUnlessSampler(keyed, claiming: "sampler-1-pod-a", names: names)?.contains("no sampler's key") == true)
        let secondSampler = CallerChecks(coordinatorEndpoint: nil, coordinatorMember: "coordinator", curve: true, samplerMembers: ["sampler-1", "sampler-2"])
        let otherKey = CallerIdentity(connection: .accepted, endpoint: nil, member: "sampler-2")
        #expect(secondSampler.refusalUnlessSampler(otherKey, claiming: "sampler-1-pod-a", names: names)?.contains("belongs to the key of member 'sampler-1'") == true)
    }
}
