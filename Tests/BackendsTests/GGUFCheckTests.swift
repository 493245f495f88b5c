import Backends
import Foundation
import TestFiles
import Testing

/// A candidate GGUF is checked whole before a server loads it: a truncated or damaged file is
/// refused with the reason, the packaged model passes.
@Suite("GGUF check")
struct GGUFCheckTests {
    /// A GGUF v3 file with one metadata entry of each kind used here and two tensors.
    static func tinyModel() -> Data {
        var bytes = Data("GGUF".utf8)
        func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        func string(_ text: String) { u64(UInt64(text.utf8.count)); bytes.append(contentsOf: Array(text.utf8)) }
        u32(3); u64(2); u64(3)
        string("general.architecture"); u32(8); string("llama")
        string("general.alignment"); u32(4); u32(32)
        string("tokenizer.ggml.tokens"); u32(9); u32(8); u64(2); string("a"); string("b")
        // token_embd: 64 f32 values (256 bytes) at 0; output: 64 q8_0 values (2 blocks, 68 bytes) at 256
        string("token_embd.weight"); u32(2); u64(8); u64(8); u32(0); u64(0)
        string("output.weight"); u32(1); u64(64); u32(8); u64(256)
        while bytes.count % 32 != 0 { bytes.append(0) }
        bytes.append(Data(count: 256 + 68))
        return bytes
    }

    @Test func aWholeFilePasses() throws {
        let summary = try GGUFCheck.check(Self.tinyModel())
        #expect(summary.version == 3 && summary.tensors == 2 && summary.metadataEntries == 3)
        #expect(summary.dataEnd == UInt64(Self.tinyModel().count))
    }

    @Test func aTruncatedFileIsRefusedNamingTheTensor() {
        let model = Self.tinyModel()
        #expect(throws: GGUFCheck.Failure.self) { try GGUFCheck.check(model.prefix(model.count - 1)) }
        do {
            _ = try GGUFCheck.check(model.prefix(model.count - 20))
            Issue.record("a file 20 bytes short passed")
        } catch {
            #expect("\(error)".contains("tensor output.weight needs \(model.count)"), "\(error)")
        }
        // cut inside the header
        do {
            _ = try GGUFCheck.check(model.prefix(60))
            Issue.record("a header cut short passed")
        } catch {
            #expect("\(error)".contains("inside the header"), "\(error)")
        }
    }

    @Test func damagedHeadersAreRefused() {
        var notGGUF = Self.tinyModel()
        notGGUF[0] = UInt8(ascii: "X")
        do {
            _ = try GGUFCheck.check(notGGUF)
            Issue.record("a file without the magic passed")
        } catch {
            #expect("\(error)" == "no GGUF magic at offset 0")
        }
        var hugeCount = Self.tinyModel()
        hugeCount.replaceSubrange(8..<16, with: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0])
        #expect(throws: GGUFCheck.Failure.self) { try GGUFCheck.check(hugeCount) }
        #expect(throws: GGUFCheck.Failure.self) { try GGUFCheck.check(Data()) }
    }

    @Test func anUnreadableFileNamesItsPath() {
        do {
            _ = try GGUFCheck.check(path: "/nonexistent/model.gguf")
            Issue.record("a missing file passed")
        } catch {
            #expect("\(error)".contains("/nonexistent/model.gguf cannot be read"))
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: PackagedModel.modelPath)))
    func thePackagedModelPasses() throws {
        let summary = try GGUFCheck.check(path: PackagedModel.modelPath)
        #expect(summary.tensors > 100)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: URL(fileURLWithPath: PackagedModel.modelPath).resolvingSymlinksInPath().path)[.size] as? Int)
        #expect(summary.dataEnd <= UInt64(size) && summary.dataEnd + 64 >= UInt64(size))
    }
}

/// Adapters and model folders are named by their content.
@Suite("Model folder digits")
struct ModelFolderDigitsTests {
    @Test func theSameFilesGiveTheSameDigitsAndAChangedFileNewOnes() throws {
        let root = try TestFiles.temporaryFolder("folder")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ folder: String, _ weights: String) throws -> String {
            let url = root.appendingPathComponent(folder)
            try FileManager.default.createDirectory(at: url.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try Data(weights.utf8).write(to: url.appendingPathComponent("adapter_model.safetensors"))
            try Data("{}".utf8).write(to: url.appendingPathComponent("sub/adapter_config.json"))
            return try ModelFileFingerprint.digits(ofFolder: url.path)
        }
        let first = try write("run-1", "weights of run 1")
        #expect(first.count == 16)
        #expect(try write("run-1-copy", "weights of run 1") == first)
        #expect(try write("run-2", "weights of run 2") != first)
        #expect(throws: BackendError.self) { try ModelFileFingerprint.digits(ofFolder: root.appendingPathComponent("missing").path) }
    }
}
