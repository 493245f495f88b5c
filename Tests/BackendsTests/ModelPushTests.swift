import Backends
import Foundation
import ScriptedHTTPServer
import Testing

/// Runtime model pushes against a server of the test's own: the right endpoint and body for
/// vLLM and SGLang, a deadline that holds, and errors that say what the server answered.
@Suite("Model push")
struct ModelPushTests {
    @Test func vllmLoadsTheAdapterUnderItsName() async throws {
        let server = try await ScriptedHTTPServer { _, _ in .reply(status: 200, body: Data("Success: LoRA adapter 'r1' added successfully.".utf8)) }
        defer { Task { await server.stop() } }
        try await ModelPush(kind: .vllmLoRA, baseURL: server.baseURL + "/", deadline: .seconds(5), apiKey: "secret")
            .push(name: "r1", path: "/models/r1", version: "r1")
        let request = try #require(server.requests.first)
        #expect(server.requests.count == 1)
        #expect(request.method == "POST")
        #expect(request.uri == "/v1/load_lora_adapter")
        #expect(request.json?["lora_name"] as? String == "r1")
        #expect(request.json?["lora_path"] as? String == "/models/r1")
        #expect(request.header("Authorization") == "Bearer secret")
    }

    @Test func sglangLoadsAdaptersAndWeights() async throws {
        let server = try await ScriptedHTTPServer { _, _ in .json(#"{"success": true, "message": "ok"}"#) }
        defer { Task { await server.stop() } }
        try await ModelPush(kind: .sglangLoRA, baseURL: server.baseURL, deadline: .seconds(5)).push(name: "r2", path: "/m/r2", version: "r2")
        try await ModelPush(kind: .sglangWeights, baseURL: server.baseURL, deadline: .seconds(5)).push(name: "r3", path: "/m/r3", version: "v3")
        let requests = server.requests
        #expect(requests.map(\.uri) == ["/load_lora_adapter", "/update_weights_from_disk"])
        #expect(requests[0].json?["lora_name"] as? String == "r2")
        #expect(requests[1].json?["model_path"] as? String == "/m/r3")
        #expect(requests[1].json?["weight_version"] as? String == "v3")
        #expect(requests[1].header("Authorization") == nil)
    }

    @Test func anAdapterAlreadyLoadedCountsAsPushed() async throws {
        let server = try await ScriptedHTTPServer { _, _ in
            .reply(status: 400, body: Data(#"{"object":"error","message":"The lora adapter 'r1' has already been loaded."}"#.utf8))
        }
        defer { Task { await server.stop() } }
        try await ModelPush(kind: .vllmLoRA, baseURL: server.baseURL, deadline: .seconds(5)).push(name: "r1", path: "/m", version: "r1")
    }

    @Test func refusalsAndErrorsSayWhatTheServerAnswered() async throws {
        let refusing = try await ScriptedHTTPServer { _, _ in .json(#"{"success": false, "message": "model_path does not exist"}"#) }
        defer { Task { await refusing.stop() } }
        await #expect(throws: BackendError("push to \(refusing.baseURL)/update_weights_from_disk was refused: model_path does not exist")) {
            try await ModelPush(kind: .sglangWeights, baseURL: refusing.baseURL, deadline: .seconds(5)).push(name: "x", path: "/nope", version: "x")
        }
        let failing = try await ScriptedHTTPServer { _, _ in .reply(status: 500, body: Data("CUDA out of memory".utf8)) }
        defer { Task { await failing.stop() } }
        await #expect(throws: BackendError("push to \(failing.baseURL)/v1/load_lora_adapter answered 500: CUDA out of memory")) {
            try await ModelPush(kind: .vllmLoRA, baseURL: failing.baseURL, deadline: .seconds(5)).push(name: "x", path: "/m", version: "x")
        }
        // Nobody listening.
        let closed = try await ScriptedHTTPServer { _, _ in .hangUp }
        await #expect(throws: BackendError.self) {
            try await ModelPush(kind: .vllmLoRA, baseURL: closed.baseURL, deadline: .seconds(5)).push(name: "x", path: "/m", version: "x")
        }
        await closed.stop()
    }

    @Test func aHungServerMeetsTheDeadline() async throws {
        let server = try await ScriptedHTTPServer { _, _ in .reply(status: 200, body: Data(), delay: .seconds(30)) }
        defer { Task { await server.stop() } }
        let started = ContinuousClock.now
        await #expect(throws: BackendError("push to \(server.baseURL)/v1/load_lora_adapter did not answer within the deadline of 0.5 seconds")) {
            try await ModelPush(kind: .vllmLoRA, baseURL: server.baseURL, deadline: .milliseconds(500)).push(name: "x", path: "/m", version: "x")
        }
        #expect(ContinuousClock.now - started < .seconds(20))   // a hang bound, not a measurement
    }
}
