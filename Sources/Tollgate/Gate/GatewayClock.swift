import Foundation
import Synchronization
import TollgateCore

/// Wall-clock time for quota windows and rate limits; tests inject a clock they move by hand.
public protocol GatewayClock: Sendable {
    func now() -> Date
}

public struct SystemClock: GatewayClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that stands still until moved (tests of window boundaries).
public final class ManualClock: GatewayClock {
    let current: Mutex<Date>
    public init(_ start: Date) { current = Mutex(start) }
    public func now() -> Date { current.withLock { $0 } }
    public func set(_ date: Date) { current.withLock { $0 = date } }
    public func advance(by seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Operator settings as last read from the store; refreshed when the store's generation moves.
public final class SettingsCache: Sendable {
    let value = Mutex(GatewaySettingsBox())
    struct GatewaySettingsBox: Sendable {
        var settings = GatewaySettings()
    }

    public init() {}

    public var current: GatewaySettings { value.withLock { $0.settings } }

    public func reload(from store: any TollgateStore) async throws {
        let stored = try await store.settings()
        let settings = GatewaySettings(stored: stored)
        value.withLock { $0.settings = settings }
        for observer in observers.withLock({ $0 }) { observer(settings) }
    }

    let observers = Mutex<[@Sendable (GatewaySettings) -> Void]>([])

    /// Calls `observer` with the settings after every reload.
    func observe(_ observer: @escaping @Sendable (GatewaySettings) -> Void) {
        observers.withLock { $0.append(observer) }
    }
}
