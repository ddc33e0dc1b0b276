import Foundation

/// A progress bar on stderr when stderr is a terminal; silent otherwise.
final class ProgressBar {
    private let total: Int
    private let label: String
    private let unit: String
    private let enabled: Bool
    private let start = Date()
    private var last = Date.distantPast
    private(set) var done = 0

    /// `unit` "B" shows byte counts and a rate; anything else shows plain counts.
    init(label: String, total: Int, unit: String = "", enabled: Bool = isatty(2) == 1) {
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.enabled = enabled
    }

    var isEnabled: Bool { enabled }

    /// Sets the amount done (for counts that only grow).
    func set(_ value: Int, detail: String = "") {
        advance(by: value - done, detail: detail)
    }

    func advance(by amount: Int = 1, detail: String = "") {
        done += amount
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) > 0.1 || done >= total else { return }
        last = now
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let elapsed = now.timeIntervalSince(start)
        var text = "\r\(label) \(bar) \(Int(fraction * 100))% "
        if unit == "B" {
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            text += "\(formatBytes(done))/\(formatBytes(total)) \(formatBytes(Int(rate)))/s"
        } else {
            text += "\(done)/\(total)"
        }
        if !detail.isEmpty { text += " " + detail }
        FileHandle.standardError.write(Data((text + "\u{1B}[K").utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var value = Double(n)
    var i = 0
    while value >= 1000 && i < units.count - 1 {
        value /= 1000
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[i])
}

/// Prints `value` as one JSON object on stdout, keys sorted.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
