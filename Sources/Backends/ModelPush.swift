import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Puts a new model on a running OpenAI-compatible server through its runtime endpoint, so
/// that the samplers in front of it serve the new model without a restart:
///
/// - vLLM (started with `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`): `POST /v1/load_lora_adapter`
///   `{"lora_name", "lora_path"}`; requests then name the adapter as their `model`.
/// - SGLang: `POST /load_lora_adapter` (the same body), or `POST /update_weights_from_disk`
///   `{"model_path", "weight_version"}` for a whole model folder.
///
/// Every push has a deadline and ends with a clear error: weight-sync hangs are the field's
/// most reported failure. A push that fails leaves the server on its previous model (the
/// servers load first and switch after), and the run stops instead of sampling on.
public struct ModelPush: Sendable {
    public enum Kind: String, Sendable, Hashable {
        case vllmLoRA = "vllm_lora"
        case sglangLoRA = "sglang_lora"
        case sglangWeights = "sglang_weights"
    }

    public var kind: Kind
    /// The server's root (`http://gpu-1:8000`).
    public var baseURL: String
    public var deadline: Duration
    /// Sent as a bearer token when set.
    public var apiKey: String?

    public init(kind: Kind, baseURL: String, deadline: Duration, apiKey: String? = nil) {
        self.kind = kind
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.deadline = deadline
        self.apiKey = apiKey
    }

    /// The endpoint and JSON body of a push.
    public func request(name: String, path: String, version: String) -> (url: String, body: [String: String]) {
        switch kind {
        case .vllmLoRA: (baseURL + "/v1/load_lora_adapter", ["lora_name": name, "lora_path": path])
        case .sglangLoRA: (baseURL + "/load_lora_adapter", ["lora_name": name, "lora_path": path])
        case .sglangWeights: (baseURL + "/update_weights_from_disk", ["model_path": path, "weight_version": version])
        }
    }

    /// Loads `path` on the server as `name` (an adapter) or as the new weights (`version`).
    /// An adapter the server reports as already loaded under that name counts as pushed (a run
    /// resumed after a crash pushes again).
    /// - Throws: ``BackendError`` naming the endpoint and what it answered, or that it did not
    ///   answer within the deadline.
    public func push(name: String, path: String, version: String) async throws {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            try await push(name: name, path: path, version: version, client: client)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func push(name: String, path: String, version: String, client: HTTPClient) async throws {
        let (url, body) = request(name: name, path: path, version: version)
        var http = HTTPClientRequest(url: url)
        http.method = .POST
        http.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { http.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        http.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])))
        let milliseconds = deadline.components.seconds * 1000 + deadline.components.attoseconds / 1_000_000_000_000_000
        let status: HTTPResponseStatus
        let text: String
        do {
            let response = try await client.execute(http, timeout: .milliseconds(milliseconds))
            status = response.status
            var buffer = try await response.body.collect(upTo: 1 << 20)
            text = buffer.readString(length: buffer.readableBytes) ?? ""
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw BackendError("push to \(url) did not answer within the deadline of \(deadline)")
        } catch {
            throw BackendError("push to \(url) failed: \(error)")
        }
        let excerpt = String(text.prefix(300))
        if status == .ok {
            // SGLang answers 200 with {"success": false, "message": ...} when loading fails.
            if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
               let success = object["success"] as? Bool, !success
            {
                throw BackendError("push to \(url) was refused: \(object["message"] ?? excerpt)")
            }
            return
        }
        if kind != .sglangWeights, status.code == 400, text.lowercased().contains("already") { return }
        throw BackendError("push to \(url) answered \(status.code): \(excerpt)")
    }
}
