import ActorCluster
import ClusterNodes
import Testing

/// The actor system settings each role's node runs with.
@Suite("Node settings")
struct NodeSettingsTests {
    /// Methods that write, fsync or compute (coordinator: journal and its compaction; trainer:
    /// records; verifier: scoring) run on the global pool, never on the node's I/O thread.
    @Test func onlySamplersServeCallsOnTheIOThread() throws {
        let config = try ClusterConfig.load(file: CallerAuthorizationTests.synthetic)
        for (role, address) in config.nodes {
            let settings = NodeRunner.systemConfiguration(config, address, role: role)
            #expect(settings.callExecution == (role == .sampler ? .eventLoop : .globalPool), "\(role)")
        }
    }
}
