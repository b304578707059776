// aec_compare: the two echo cancellers Debian 12 packages (libspeexdsp's MDF and the WebRTC
// audio processing module 0.3), run on the simulated phone lines of Tests/vad/make_mixes.py.
// Built and run by `make aec-compare` (docs/VAD.md, "Which canceller"); not part of the server.
//
//   aec_compare MIX_DIR                 quality table (ERLE, convergence, double-talk, CPU)
//   aec_compare MIX_DIR --callgrind     the same, plus callgrind instructions per 20 ms
//   aec_compare MIX_DIR --cost-run NAME one canceller over one line, for callgrind (internal)
//
// Every mix name says what is in it (line_erl<E>[clipped]_echo<D>ms_<noise>, and
// line_under<U>_{erl15_echo60ms,noecho}_<noise>_v<i>), so the echo that make_mixes.py added can
// be built again from the agent reference: echo = agent delayed D ms, E dB down (overdriven into
// a clipper first for the clipped line). The mix less that echo is what the line carried besides
// it (noise, and the caller on the caller mixes). On the echo-only lines the program checks that
// remainder's level against the noise level in the name before using it.

#include <speex/speex_echo.h>

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kRate = 8000;
constexpr size_t kBlock = 160;  // 20 ms: what the server hands the canceller
constexpr size_t kHalf = 80;    // 10 ms: what the WebRTC module takes

using Samples = std::vector<int16_t>;

// --- the mixes -------------------------------------------------------------------------------

struct Mix {
    std::string name, kind;
    long onset = -1;
    Samples line, agent;
    int erl = 0, delayMs = 0;
    bool clipped = false, caller = false, noEcho = false;
    std::string noise;  // "white-50", "pink-40"
    double noiseDbfs = 0;
};

Samples readRaw(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Samples s(bytes.size() / 2);
    for (size_t i = 0; i < s.size(); ++i)
        s[i] = int16_t(uint16_t(uint8_t(bytes[2 * i])) | uint16_t(uint8_t(bytes[2 * i + 1])) << 8);
    return s;
}

int numberAfter(const std::string& s, const std::string& key) {
    size_t at = s.find(key);
    return at == std::string::npos ? -1 : std::atoi(s.c_str() + at + key.size());
}

std::vector<Mix> loadMixes(const std::string& dir) {
    std::ifstream manifest(dir + "/manifest.tsv");
    if (!manifest) {
        std::fprintf(stderr, "no %s/manifest.tsv (make it with Tests/vad/make_mixes.py)\n", dir.c_str());
        std::exit(2);
    }
    std::vector<Mix> mixes;
    std::string row;
    while (std::getline(manifest, row)) {
        std::istringstream fields(row);
        Mix m;
        long count = 0;
        fields >> m.name >> m.kind >> m.onset >> count;
        bool echoLine = m.kind == "lineecho";
        bool doubleTalk = m.kind == "line";
        if (!echoLine && !doubleTalk) continue;
        m.caller = doubleTalk;
        m.erl = numberAfter(m.name, "_erl");
        m.delayMs = numberAfter(m.name, "_echo");
        m.clipped = m.name.find("clipped") != std::string::npos;
        m.noEcho = m.name.find("_noecho_") != std::string::npos;
        if (m.noEcho) m.erl = -1, m.delayMs = 0;
        size_t ms = m.noEcho ? m.name.find("_noecho_") + 5 : m.name.find("ms_");
        m.noise = m.name.substr(ms + 3);
        if (doubleTalk) m.noise = m.noise.substr(0, m.noise.rfind("_v"));
        m.noiseDbfs = -std::atof(m.noise.c_str() + m.noise.find('-') + 1);
        m.line = readRaw(dir + "/" + m.name + ".caller.raw");
        m.agent = readRaw(dir + "/" + m.name + ".agent.raw");
        mixes.push_back(std::move(m));
    }
    return mixes;
}

// The echo make_mixes.py's line_echo() put on the line, rebuilt from the agent reference.
std::vector<double> rebuildEcho(const Mix& m) {
    size_t n = m.agent.size(), d = size_t(kRate * m.delayMs / 1000);
    std::vector<double> source(m.agent.begin(), m.agent.end());
    if (m.clipped) {
        double peak = 0, before = 0, after = 0;
        for (double v : source) peak = std::max(peak, std::fabs(v));
        double limit = peak / 4;
        for (double& v : source) {
            before += v * v;
            v = std::clamp(v * 2, -limit, limit);
            after += v * v;
        }
        double scale = std::sqrt(before / after);
        for (double& v : source) v *= scale;
    }
    double gain = std::pow(10.0, -m.erl / 20.0);
    std::vector<double> echo(n, 0.0);
    if (m.noEcho) return echo;
    for (size_t i = d; i < n; ++i) echo[i] = source[i - d] * gain;
    return echo;
}

double dbfs(double meanSquare) { return 10 * std::log10(meanSquare / (32768.0 * 32768.0) + 1e-30); }
double db(double ratio) { return 10 * std::log10(ratio + 1e-30); }

// In-place radix-2 FFT (n a power of two); inverse without the 1/n.
void fft(std::vector<std::complex<double>>& a, bool inverse) {
    size_t n = a.size();
    for (size_t i = 1, j = 0; i < n; ++i) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) std::swap(a[i], a[j]);
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        double angle = 2 * M_PI / double(len) * (inverse ? 1 : -1);
        std::complex<double> step(std::cos(angle), std::sin(angle));
        for (size_t i = 0; i < n; i += len) {
            std::complex<double> w(1);
            for (size_t k = 0; k < len / 2; ++k, w *= step) {
                auto u = a[i + k], v = a[i + k + len / 2] * w;
                a[i + k] = u + v;
                a[i + k + len / 2] = u - v;
            }
        }
    }
}

// Every figure is taken in the telephone band, 300-3400 Hz (zero-phase: the whole signal's
// spectrum, with 50 Hz raised-cosine edges). Below 300 Hz the cancellers differ in what they
// do to the line itself (speexdsp's DC notch removes much of the pink noise's sub-audio
// energy, which would count as "echo removed"), and the detector does not look there.
std::vector<double> band(const std::vector<double>& x, bool quadrature = false) {
    size_t n = 1;
    while (n < x.size()) n <<= 1;
    std::vector<std::complex<double>> a(n);
    for (size_t i = 0; i < x.size(); ++i) a[i] = x[i];
    fft(a, false);
    for (size_t k = 0; k <= n / 2; ++k) {
        double f = double(k) * kRate / double(n), g = 1;
        if (f < 250 || f > 3450) g = 0;
        else if (f < 300) g = 0.5 - 0.5 * std::cos(M_PI * (f - 250) / 50);
        else if (f > 3400) g = 0.5 + 0.5 * std::cos(M_PI * (f - 3400) / 50);
        // quadrature: the band-limited signal turned by 90 degrees (its Hilbert transform)
        std::complex<double> turn = quadrature ? std::complex<double>(0, -1) : 1;
        a[k] *= g * turn;
        if (k && k < n / 2) a[n - k] *= g * std::conj(turn);
    }
    fft(a, true);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < y.size(); ++i) y[i] = a[i].real() / double(n);
    return y;
}

std::vector<double> band(const Samples& x) { return band(std::vector<double>(x.begin(), x.end())); }

// --- the cancellers ----------------------------------------------------------------------------

struct Canceller {
    virtual ~Canceller() = default;
    // One 20 ms block: `line` (what came back), `reference` (what was played, as this canceller
    // is fed it), into `out`.
    virtual void process(const int16_t* line, const int16_t* reference, int16_t* out) = 0;
};

struct Speex final : Canceller {
    SpeexEchoState* state;
    explicit Speex(int filter) {
        state = speex_echo_state_init(int(kBlock), filter);
        int rate = kRate;
        speex_echo_ctl(state, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
    }
    ~Speex() override { speex_echo_state_destroy(state); }
    void process(const int16_t* line, const int16_t* reference, int16_t* out) override {
        speex_echo_cancellation(state, line, reference, out);
    }
};

enum class WebRtcMode { aec, aecm };

struct WebRtc final : Canceller {
    std::unique_ptr<webrtc::AudioProcessing> apm;
    int delayMs;
    webrtc::AudioFrame far, near;
    WebRtc(WebRtcMode mode, int reportedDelayMs, bool extended, bool agnostic) : delayMs(reportedDelayMs) {
        webrtc::Config config;
        config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(extended));
        config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(agnostic));
        config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
        apm.reset(webrtc::AudioProcessing::Create(config));
        using P = webrtc::AudioProcessing;
        check(apm->Initialize(kRate, kRate, kRate, P::kMono, P::kMono, P::kMono), "Initialize(8000)");
        if (mode == WebRtcMode::aec) {
            check(apm->echo_cancellation()->enable_drift_compensation(false), "drift off");
            check(apm->echo_cancellation()->Enable(true), "AEC enable");
        } else {
            check(apm->echo_control_mobile()->enable_comfort_noise(false), "AECM comfort noise off");
            check(apm->echo_control_mobile()->Enable(true), "AECM enable");
        }
        for (webrtc::AudioFrame* f : {&far, &near}) {
            f->sample_rate_hz_ = kRate;
            f->num_channels_ = 1;
            f->samples_per_channel_ = kHalf;
        }
    }
    static void check(int error, const char* what) {
        if (error != 0) {
            std::fprintf(stderr, "webrtc: %s returned %d\n", what, error);
            std::exit(3);
        }
    }
    void process(const int16_t* line, const int16_t* reference, int16_t* out) override {
        for (size_t half = 0; half < kBlock; half += kHalf) {
            std::memcpy(far.data_, reference + half, kHalf * 2);
            std::memcpy(near.data_, line + half, kHalf * 2);
            far.samples_per_channel_ = near.samples_per_channel_ = kHalf;
            check(apm->AnalyzeReverseStream(&far), "AnalyzeReverseStream");
            check(apm->set_stream_delay_ms(delayMs), "set_stream_delay_ms");
            check(apm->ProcessStream(&near), "ProcessStream");
            std::memcpy(out + half, near.data_, kHalf * 2);
        }
    }
};

// The two ends of the scale, to check the figures: a line passed through untouched, and the
// exact echo (rebuilt from the mix name) subtracted.
struct PassThrough final : Canceller {
    void process(const int16_t* line, const int16_t*, int16_t* out) override { std::memcpy(out, line, kBlock * 2); }
};

struct Exact final : Canceller {
    std::vector<double> echo;
    size_t at = 0;
    explicit Exact(const Mix& m) : echo(rebuildEcho(m)) {}
    void process(const int16_t* line, const int16_t*, int16_t* out) override {
        for (size_t i = 0; i < kBlock; ++i, ++at)
            out[i] = int16_t(std::lround(std::clamp(double(line[i]) - echo[at], -32768.0, 32767.0)));
    }
};

// A canceller as the comparison runs it: which library and settings, and whether the
// reference is delayed by the line's true delay before the canceller sees it.
struct Setup {
    const char* name;
    const char* what;
    bool aligned;
    std::unique_ptr<Canceller> (*make)(const Mix& mix);
};

const Setup kSetups[] = {
    {"none", "the line untouched (a check of the figures: ERLE 0, caller kept 0 dB)", false,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<PassThrough>(); }},
    {"exact", "the true echo subtracted (a check of the figures: ERLE at its ceiling, caller kept 0 dB)", false,
     [](const Mix& m) -> std::unique_ptr<Canceller> { return std::make_unique<Exact>(m); }},
    {"speex640", "speexdsp MDF 160/640, reference delayed by the true delay (as avr-core runs it)", true,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<Speex>(640); }},
    {"speex160", "speexdsp MDF 160/160, reference delayed by the true delay", true,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<Speex>(160); }},
    {"speex640raw", "speexdsp MDF 160/640, reference not delayed", false,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<Speex>(640); }},
    {"aec", "WebRTC AEC, reference not delayed, set_stream_delay_ms(true delay)", false,
     [](const Mix& m) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aec, m.delayMs, false, false); }},
    {"aecpre", "WebRTC AEC, reference delayed by the true delay, set_stream_delay_ms(0)", true,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aec, 0, false, false); }},
    {"aecext", "WebRTC AEC, extended filter, reference not delayed, set_stream_delay_ms(true delay)", false,
     [](const Mix& m) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aec, m.delayMs, true, false); }},
    {"aecda", "WebRTC AEC, delay-agnostic + extended filter, reference not delayed, delay reported 0", false,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aec, 0, true, true); }},
    {"aecm", "WebRTC AECM, reference not delayed, set_stream_delay_ms(true delay), comfort noise off", false,
     [](const Mix& m) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aecm, m.delayMs, false, false); }},
    {"aecmpre", "WebRTC AECM, reference delayed by the true delay, set_stream_delay_ms(0), comfort noise off", true,
     [](const Mix&) -> std::unique_ptr<Canceller> { return std::make_unique<WebRtc>(WebRtcMode::aecm, 0, false, false); }},
};

// Runs one setup over `line` with `agent` as the reference; returns the output. The function
// callgrind counts (--toggle-collect=aec_cost_run) is the loop alone, not the set-up.
Samples referenceFor(const Setup& setup, const Samples& agent, int delayMs) {
    if (!setup.aligned) return agent;
    size_t d = size_t(kRate * delayMs / 1000);
    Samples shifted(agent.size(), 0);
    std::copy(agent.begin(), agent.end() - long(d), shifted.begin() + long(d));
    return shifted;
}

extern "C" __attribute__((noinline)) void aec_cost_run(Canceller* c, const int16_t* line, const int16_t* ref,
                                                       int16_t* out, size_t blocks) {
    for (size_t b = 0; b < blocks; ++b) c->process(line + b * kBlock, ref + b * kBlock, out + b * kBlock);
}

double cpuSeconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

struct Run {
    Samples out;
    double cpu = 0;  // process CPU seconds spent in the loop
};

Run run(const Setup& setup, const Samples& line, const Mix& m) {
    auto canceller = setup.make(m);
    Samples ref = referenceFor(setup, m.agent, m.delayMs);
    size_t blocks = line.size() / kBlock;
    Run r;
    r.out.assign(blocks * kBlock, 0);
    double start = cpuSeconds();
    aec_cost_run(canceller.get(), line.data(), ref.data(), r.out.data(), blocks);
    r.cpu = cpuSeconds() - start;
    return r;
}

// --- the figures ---------------------------------------------------------------------------------

constexpr size_t kSettle = 2 * kRate;  // ERLE counts from 2 s on (convergence)

double energy(const std::vector<double>& x, size_t from, size_t to) {
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += x[i] * x[i];
    return sum;
}

struct EchoFigures {
    double erleMix = 0;    // dB: line power in / output power, from 2 s, noise included
    double ceiling = 0;    // dB: what a canceller that removes the echo and keeps the noise gets
    double erleAlone = 0;  // dB: the same line without its noise: echo in / residual out
    int convergedS = -1;   // first second from which every 1 s window of erleAlone is >= 10 dB
};

EchoFigures echoFigures(const Setup& setup, const Mix& m, const std::vector<double>& echo, double* cpu) {
    EchoFigures f;
    Run mixed = run(setup, m.line, m);
    *cpu += mixed.cpu;
    size_t n = mixed.out.size();
    std::vector<double> rest(n);
    for (size_t i = 0; i < n; ++i) rest[i] = m.line[i] - echo[i];
    auto lineB = band(m.line), outB = band(mixed.out), restB = band(rest);
    f.erleMix = db(energy(lineB, kSettle, n) / energy(outB, kSettle, n));
    f.ceiling = db(energy(lineB, kSettle, n) / energy(restB, kSettle, n));
    Samples alone(m.line.size());
    for (size_t i = 0; i < alone.size(); ++i) alone[i] = int16_t(std::lround(std::clamp(echo[i], -32768.0, 32767.0)));
    Run clean = run(setup, alone, m);
    *cpu += clean.cpu;
    auto aloneB = band(alone), cleanB = band(clean.out);
    f.erleAlone = db(energy(aloneB, kSettle, n) / energy(cleanB, kSettle, n));
    // Per second: windows with (almost) no echo in them (agent pauses) say nothing.
    size_t seconds = n / kRate;
    double mean = energy(aloneB, 0, seconds * kRate) / double(seconds);
    std::vector<double> perSecond(seconds);
    std::vector<bool> counted(seconds);
    for (size_t s = 0; s < seconds; ++s) {
        double a = energy(aloneB, s * kRate, (s + 1) * kRate), b = energy(cleanB, s * kRate, (s + 1) * kRate);
        counted[s] = a > mean * 0.05;
        perSecond[s] = db(a / b);
    }
    for (size_t s = 0; s < seconds && f.convergedS < 0; ++s) {
        bool holds = counted[s];
        for (size_t t = s; t < seconds; ++t)
            if (counted[t] && perSecond[t] < 10) holds = false;
        if (holds) f.convergedS = int(s);
    }
    return f;
}

struct TalkFigures {
    double kept = 0;      // dB: caller power in the output / caller power in, over its speech
    double echoLeft = 0;  // dB: echo in / what is left that is not the caller (ERLE in double talk)
    int lag = 0;          // samples the output lags the input
};

// The caller survives to the extent the output still carries its waveform. Per 20 ms frame of
// the caller's speech, the output (band-limited, moved back by the canceller's own lag) is
// fitted, least squares, as a s + b h: s is the near-end signal (the mix less the rebuilt echo:
// caller + line noise, band-limited the same way), h the same turned by 90 degrees, so a gain
// and a phase per frame are what the canceller did to the caller (speexdsp's DC notch turns
// 300 Hz by 50 degrees without taking anything away: a plain projection on s would count that
// as lost caller and as echo left). Caller power kept = sum |a s + b h|^2 / sum |s|^2. Residual
// echo, being uncorrelated with the caller, is not counted as caller; what the fit leaves,
// out - (a s + b h), is the echo left during double talk, against the echo power in the same
// frames. A suppressor that mutes the frame keeps nothing; a linear filter that does not
// diverge keeps 0 dB. The mixes without echo give the same figures for a line with nothing to
// cancel (what the canceller does to a caller who talks alone, the agent playing).
TalkFigures talkFigures(const Setup& setup, const Mix& m, const std::vector<double>& echo, double* cpu) {
    TalkFigures f;
    Run r = run(setup, m.line, m);
    *cpu += r.cpu;
    size_t n = r.out.size(), frames = n / kBlock;
    std::vector<double> raw(n);
    for (size_t i = 0; i < n; ++i) raw[i] = m.line[i] - echo[i];
    auto s = band(raw), h = band(raw, true), e = band(echo), out = band(r.out);
    size_t onset = size_t(m.onset);
    double noise = energy(s, 0, onset) / double(onset);
    std::vector<size_t> speech;
    double loudest = 0;
    std::vector<double> power(frames, 0);
    for (size_t fr = onset / kBlock; fr < frames; ++fr) {
        power[fr] = energy(s, fr * kBlock, (fr + 1) * kBlock) / double(kBlock);
        loudest = std::max(loudest, power[fr]);
    }
    for (size_t fr = onset / kBlock; fr < frames; ++fr)
        if (power[fr] >= std::max(loudest * 1e-3, noise * 4)) speech.push_back(fr);
    auto at = [&](size_t i) { return i + size_t(f.lag) < n ? out[i + size_t(f.lag)] : 0.0; };
    double bestCorrelation = -1e300;
    for (int lag = 0; lag <= int(kBlock); ++lag) {
        double c = 0;
        for (size_t fr : speech)
            for (size_t i = fr * kBlock; i < (fr + 1) * kBlock && i + size_t(lag) < n; ++i) c += s[i] * out[i + size_t(lag)];
        if (c > bestCorrelation) {
            bestCorrelation = c;
            f.lag = lag;
        }
    }
    double sIn = 0, sKept = 0, echoIn = 0, rest = 0;
    for (size_t fr : speech) {
        double ss = 0, hh = 0, sh = 0, so = 0, ho = 0, oo = 0;
        for (size_t i = fr * kBlock; i < (fr + 1) * kBlock; ++i) {
            double o = at(i);
            ss += s[i] * s[i];
            hh += h[i] * h[i];
            sh += s[i] * h[i];
            so += s[i] * o;
            ho += h[i] * o;
            oo += o * o;
            echoIn += e[i] * e[i];
        }
        double det = ss * hh - sh * sh;
        double a = (so * hh - ho * sh) / det, b = (ho * ss - so * sh) / det;
        double fitted = a * so + b * ho;  // |a s + b h|^2 (least squares: the fit is orthogonal to the rest)
        sIn += ss;
        sKept += fitted;
        rest += oo - fitted;
    }
    f.kept = db(sKept / sIn);
    f.echoLeft = echoIn > 0 ? db(echoIn / std::max(rest, 1.0)) : db(sIn / std::max(rest, 1.0));
    return f;
}

// --- output --------------------------------------------------------------------------------------

std::string fmt(double v, int decimals = 1) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return b;
}

void printTable(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
    std::string line = "|";
    for (auto& h : header) line += " " + h + " |";
    std::printf("%s\n|", line.c_str());
    for (size_t i = 0; i < header.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (auto& row : rows) {
        std::string l = "|";
        for (auto& c : row) l += " " + c + " |";
        std::printf("%s\n", l.c_str());
    }
    std::printf("\n");
}

// The cost run: 12 s of the ERL 10 dB / 60 ms line (in the quick set of mixes too).
constexpr size_t kCostBlocks = 600;

// Instructions per 20 ms of one setup, counted by callgrind around aec_cost_run only.
long long callgrindPer20ms(const char* self, const std::string& dir, const Setup& setup) {
    std::string outFile = "/tmp/aec_compare.callgrind." + std::to_string(getpid()) + "." + setup.name;
    std::string cmd = "valgrind --tool=callgrind --toggle-collect=aec_cost_run --callgrind-out-file=" + outFile + " '" +
                      self + "' '" + dir + "' --cost-run " + setup.name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return -1;
    std::ifstream f(outFile);
    std::string row;
    long long total = -1;
    while (std::getline(f, row))
        if (row.rfind("totals:", 0) == 0 || row.rfind("summary:", 0) == 0) total = std::atoll(row.c_str() + row.find(':') + 1);
    std::remove(outFile.c_str());
    return total < 0 ? -1 : total / (long long)kCostBlocks;
}

const Mix* costMix(const std::vector<Mix>& mixes) {
    for (auto& m : mixes)
        if (m.name == "line_erl10_echo60ms_white-50") return &m;
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MIX_DIR [--callgrind | --cost-run NAME]\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    bool callgrind = argc > 2 && std::strcmp(argv[2], "--callgrind") == 0;
    std::vector<Mix> mixes = loadMixes(dir);
    if (argc > 3 && std::strcmp(argv[2], "--cost-run") == 0) {
        const Mix* m = costMix(mixes);
        for (auto& setup : kSetups)
            if (m && std::strcmp(setup.name, argv[3]) == 0) {
                if (m->line.size() < kCostBlocks * kBlock) return 2;
                auto c = setup.make(*m);
                Samples ref = referenceFor(setup, m->agent, m->delayMs);
                Samples out(m->line.size());
                aec_cost_run(c.get(), m->line.data(), ref.data(), out.data(), kCostBlocks);
                return 0;
            }
        return 2;
    }

    std::vector<const Mix*> lines, talks;
    for (auto& m : mixes) (m.caller ? talks : lines).push_back(&m);
    if (lines.empty()) {
        std::fprintf(stderr, "no line mixes in %s\n", dir.c_str());
        return 2;
    }
    // The rebuilt echo must leave exactly the line noise named in the mix (or the caller).
    std::map<const Mix*, std::vector<double>> echoes;
    for (auto& m : mixes) {
        echoes[&m] = rebuildEcho(m);
        if (!m.caller) {
            double rest = 0;
            for (size_t i = 0; i < m.line.size(); ++i) rest += std::pow(m.line[i] - echoes[&m][i], 2);
            double level = dbfs(rest / double(m.line.size()));
            if (std::fabs(level - m.noiseDbfs) > 1.0) {
                std::fprintf(stderr, "%s: mix less rebuilt echo is %.1f dBFS, not the %.0f dBFS of its noise\n",
                             m.name.c_str(), level, m.noiseDbfs);
                return 4;
            }
        }
    }

    std::printf("Cancellers:\n");
    for (auto& s : kSetups) std::printf("  %-12s %s\n", s.name, s.what);
    std::printf("\n");

    std::vector<std::string> header{"line"};
    for (auto& s : kSetups) header.push_back(s.name);
    std::vector<std::vector<std::string>> erleRows, convRows, talkRows;
    std::map<std::string, double> cpu;
    double audioSeconds = 0;
    std::map<std::string, std::vector<EchoFigures>> byLine;
    for (const Mix* m : lines) {
        std::vector<std::string> e{m->name.substr(5)}, c{m->name.substr(5)};
        for (auto& s : kSetups) {
            EchoFigures f = echoFigures(s, *m, echoes[m], &cpu[s.name]);
            e.push_back(fmt(f.erleMix) + " / " + fmt(f.erleAlone));
            c.push_back(f.convergedS < 0 ? "never" : std::to_string(f.convergedS) + " s");
            byLine[s.name].push_back(f);
        }
        double ceiling = byLine[kSetups[0].name].back().ceiling;
        e[0] += " (ceiling " + fmt(ceiling) + ")";
        erleRows.push_back(e);
        convRows.push_back(c);
        audioSeconds += 2.0 * double(m->line.size()) / kRate;
    }
    std::printf("ERLE after 2 s, dB: on the mix (line in / output, noise included; the ceiling is line in /\n"
                "its noise) / on the same echo without noise (echo in / output)\n\n");
    printTable(header, erleRows);
    std::printf("Converged: first second from which every 1 s window of the noise-free run has ERLE >= 10 dB\n\n");
    printTable(header, convRows);

    std::map<std::string, std::vector<TalkFigures>> talkBy;
    for (const Mix* m : talks) {
        std::vector<std::string> t{m->name.substr(5)};
        for (auto& s : kSetups) {
            TalkFigures f = talkFigures(s, *m, echoes[m], &cpu[s.name]);
            t.push_back(fmt(f.kept) + " / " + fmt(f.echoLeft) + (f.lag ? " (lag " + std::to_string(f.lag) + ")" : ""));
            talkBy[s.name].push_back(f);
        }
        talkRows.push_back(t);
        audioSeconds += double(m->line.size()) / kRate;
    }
    if (!talks.empty()) {
        std::printf("Caller 10/16/20 dB under the agent, over an ERL 15 dB / 60 ms echo (double talk) and without echo,\n"
                    "over the caller's speech frames: caller kept, dB (0 = all of it) / echo removed meanwhile, dB (without\n"
                    "echo: caller in / what is not the caller); lag = samples the output lags the input\n\n");
        printTable(header, talkRows);
    }

    // Summary: one row per canceller.
    std::vector<std::vector<std::string>> summary;
    std::map<std::string, long long> instructions;
    if (callgrind) {
        char self[4096] = {};
        if (readlink("/proc/self/exe", self, sizeof self - 1) <= 0) std::strcpy(self, argv[0]);
        for (auto& s : kSetups) instructions[s.name] = callgrindPer20ms(self, dir, s);
    }
    for (auto& s : kSetups) {
        auto& f = byLine[s.name];
        auto pick = [&](auto pred, auto value) {
            double sum = 0;
            int count = 0;
            for (size_t i = 0; i < lines.size(); ++i)
                if (pred(*lines[i])) {
                    sum += value(f[i]);
                    ++count;
                }
            return count ? sum / count : NAN;
        };
        auto linearWhite = [](const Mix& m) { return !m.clipped && m.noise == "white-50"; };
        auto linearPink = [](const Mix& m) { return !m.clipped && m.noise == "pink-40"; };
        auto clipped = [](const Mix& m) { return m.clipped; };
        double worstConv = 0;
        int never = 0;
        for (size_t i = 0; i < lines.size(); ++i)
            if (!lines[i]->clipped) {
                if (f[i].convergedS < 0) ++never;
                else worstConv = std::max(worstConv, double(f[i].convergedS));
            }
        double keptMin = 1e9, keptSum = 0, leftSum = 0, cleanSum = 0, nt = 0, nc = 0;
        int lag = 0;
        for (size_t i = 0; i < talks.size(); ++i) {
            auto& t = talkBy[s.name][i];
            lag = std::max(lag, t.lag);
            if (talks[i]->noEcho) {
                cleanSum += t.kept;
                ++nc;
                continue;
            }
            keptMin = std::min(keptMin, t.kept);
            keptSum += t.kept;
            leftSum += t.echoLeft;
            ++nt;
        }
        std::string ins = callgrind ? (instructions[s.name] < 0 ? "failed" : std::to_string(instructions[s.name])) : "-";
        summary.push_back({s.name,
                           fmt(pick(linearWhite, [](auto& x) { return x.erleMix; })),
                           fmt(pick(linearWhite, [](auto& x) { return x.erleAlone; })),
                           fmt(pick(linearPink, [](auto& x) { return x.erleMix; })),
                           never ? std::to_string(never) + " never" : "≤ " + fmt(worstConv, 0) + " s",
                           fmt(cleanSum / nc),
                           fmt(keptSum / nt) + " (" + fmt(keptMin) + ")",
                           fmt(leftSum / nt),
                           fmt(lag * 1000.0 / kRate, 0),
                           fmt(pick(clipped, [](auto& x) { return x.erleMix; })) + " / " +
                               fmt(pick(clipped, [](auto& x) { return x.erleAlone; })),
                           ins,
                           fmt(cpu[s.name] / audioSeconds * 1000, 3)});
    }
    double ceilWhite = 0, ceilPink = 0;
    int nw = 0, np = 0;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i]->clipped) continue;
        double c = byLine[kSetups[0].name][i].ceiling;
        if (lines[i]->noise == "white-50") ceilWhite += c, ++nw;
        else ceilPink += c, ++np;
    }
    std::printf("Summary (means; ERLE over the linear lines ERL 6/10/15 dB x delay 0/60/200 ms, in the 300-3400 Hz band)\n\n");
    printTable({"canceller", "ERLE white −50 (ceiling " + fmt(nw ? ceilWhite / nw : NAN) + ")", "ERLE noise-free",
                "ERLE pink −40 (ceiling " + fmt(np ? ceilPink / np : NAN) + ")", "converged (≥ 10 dB)",
                "caller kept, no echo, dB", "double talk: caller kept dB, mean (worst)", "double talk: echo removed dB",
                "output delay ms", "clipped: ERLE mix / noise-free",
                "instructions per 20 ms (callgrind)", "ms CPU per call-second (noisy)"},
               summary);
    return 0;
}
