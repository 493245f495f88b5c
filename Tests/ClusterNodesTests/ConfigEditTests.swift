import Backends
import ClusterNodes
import Foundation
import Testing
import TestFiles

/// Typed config edits (what the rounds driver, the benchmarks and `k8s` change in a config):
/// values keep their types, paths with spaces and colons stay one string, and a phase's edits
/// travel to child nodes as a JSON file that reads back the same.
@Suite("Config edits")
struct ConfigEditTests {
    private let synthetic = TestFiles.cluster.appendingPathComponent("synthetic.yaml").path

    @Test func editsSetTypedValuesAfterTheOverrides() throws {
        let folder = try TestFiles.temporaryFolder("edits")
        defer { try? FileManager.default.removeItem(at: folder) }
        let spaced = folder.appendingPathComponent("a folder: with colons")
        try FileManager.default.createDirectory(at: spaced, withIntermediateDirectories: true)
        let dataset = spaced.appendingPathComponent("questions.jsonl").path
        try Data(#"{"id": "q1", "question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}"#.utf8 + [0x0A]).write(to: URL(fileURLWithPath: dataset))
        let config = try ClusterConfig.load(file: synthetic, overrides: ["method.m=4", "method.paths_per_request=2"], edits: [
            ConfigEdit(["method", "m"], .int(6)),
            ConfigEdit(["method", "temperature"], .double(0.25)),
            ConfigEdit(["method", "stop"], .list([.string("\n")])),
            ConfigEdit(["dataset"], .mapping(["path": .string(dataset), "format": .string("gsm8k"), "limit": .int(7)])),
            ConfigEdit(["samplers", "0", "capacity"], .int(2)),
            ConfigEdit(["samplers", "0", "replicas"], .null),
            ConfigEdit(["trainer", "formats"], .list([])),
        ])
        #expect(config.method.m == 6 && config.method.temperature == 0.25 && config.method.stop == ["\n"])
        #expect(config.dataset.path == dataset && config.dataset.limit == 7)
        #expect(config.samplers.count == 1 && config.samplers[0].capacity == 2)
        #expect(config.trainer.formats.isEmpty)
        // A string that reads as a number stays a string where a string is expected.
        let versioned = try ClusterConfig.load(file: synthetic, edits: [ConfigEdit(["samplers", "0", "backend", "model_version"], .string("8"))])
        guard case let .synthetic(backend) = versioned.samplers[0].backend else { throw TestFailure("not the synthetic backend") }
        #expect(backend.modelVersion == "8")
    }

    @Test func aBadEditNamesItsKey() {
        #expect(throws: ConfigError.self) { try ClusterConfig.load(file: synthetic, edits: [ConfigEdit(["samplers", "9", "capacity"], .int(1))]) }
        do {
            _ = try ClusterConfig.load(file: synthetic, edits: [ConfigEdit(["method", "m"], .string("many"))])
            Issue.record("a string for method.m was taken")
        } catch {
            #expect("\(error)".contains("method.m"))
        }
    }

    @Test func editsReadBackFromTheirFile() throws {
        let folder = try TestFiles.temporaryFolder("edits")
        defer { try? FileManager.default.removeItem(at: folder) }
        let edits = [
            ConfigEdit(["rounds"], .null), ConfigEdit(["method", "m"], .int(3)), ConfigEdit(["method", "temperature"], .double(0.7)),
            ConfigEdit(["rounds", "data", "accumulate"], .bool(true)),
            ConfigEdit(["dataset"], .mapping(["path": .string("x.jsonl"), "limit": .int(2)])),
        ]
        let file = folder.appendingPathComponent("phase-edits.json")
        try ConfigEdit.write(edits, to: file)
        #expect(try ConfigEdit.read(file) == edits)
    }
}
