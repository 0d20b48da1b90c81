// Many threads sharing one Model (issue 14, item 4; docs/RELIABILITY.md,
// "ThreadSanitizer"). One Model is loaded once and shared as
// std::shared_ptr<const Model>; std::threads each make their own Plan or
// Extractor with different options (input sizes, batch, an intermediate
// layer, pooling, a Dense head's logits and probabilities, OpenMP threads
// inside run, ISA, profiling), run several iterations into their own
// workspace and compare every output bit for bit (memcmp) with the same
// options' output computed beforehand on the main thread alone with one
// thread (run() promises the same bits for any thread count and batch).
// Also: one Plan shared by threads (each with its own workspace), and
// models loaded concurrently from a file and from memory.
//
// ctest runs it as cpp_threads (g++ and libgomp: a correctness test);
// tests/tsan_test.sh builds it with clang++ -fsanitize=thread and LLVM's
// libomp with the Archer tool, where any data race fails the run.
//
// Failures inside worker threads are collected as strings and checked on
// the main thread after join (doctest's asserts are not used off it).
//   FEATX_TEST_ITERATIONS   iterations per thread (default 4)
// The last case is skipped unless asked for (--no-skip -tc='canary*'): two
// threads misuse one workspace, a real race in featx's own code, which
// tests/tsan_test.sh requires TSan to report.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "featx/detail/task_queues.hpp"
#include "featx/detail/thread_team.hpp"
#include "featx/extractor.hpp"
#include "featx/model.hpp"
#include "featx/plan.hpp"
#include "featx/run.hpp"
#include "test_support.hpp"

namespace {

using featx::Model;
using featx::Output;
using featx::Plan;
using featx::PlanOptions;
using featx::Pool;

int iterations() {
  const char* env = std::getenv("FEATX_TEST_ITERATIONS");
  const int n = env ? std::atoi(env) : 0;
  return n > 0 ? n : 4;
}

// n deterministic images in [0, 1], different per seed.
std::vector<float> make_images(int n, int h, int w, uint32_t seed) {
  std::vector<float> v(size_t(n) * size_t(h) * size_t(w) * 3);
  uint32_t s = seed * 2654435761u + 12345u;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = float(s >> 8) / float(1u << 24);
  }
  return v;
}

enum class Api { plan_run, extractor, shared_plan };

// One worker thread's work: the options of its plans (one per input size,
// cycled through by iteration) and how it runs them.
struct Job {
  std::string label;
  Api api = Api::plan_run;
  std::vector<std::pair<int, int>> sizes;  // (height, width), one plan each
  int batch = 1;
  std::string layer;
  Pool pool = Pool::avg;
  Output output = Output::features;
  int threads = 1;  // OpenMP threads inside run (0: OpenMP's default)
  std::string isa;  // "": the best
  bool profile = false;
  int shared_plan = -1;  // Api::shared_plan: index into the shared plans
};

PlanOptions options_for(const Job& j, int h, int w, int batch, int threads, bool profile) {
  PlanOptions o;
  o.height = h;
  o.width = w;
  o.batch = batch;
  o.layer = j.output == Output::features ? j.layer : std::string();
  o.pool = j.pool;
  o.output = j.output;
  o.threads = threads;
  o.isa = j.isa;
  o.profile = profile;
  return o;
}

// What one (job, size) must give: its images and the reference output of
// all `batch` of them, from a one-thread plan run on the main thread.
struct Expected {
  int height = 0, width = 0;
  std::vector<float> images;
  std::vector<float> output;
  size_t per_image = 0;
};

std::string describe(const Job& j, int h, int w) {
  std::ostringstream s;
  s << j.label << " " << h << "x" << w << " batch " << j.batch << " layer '" << j.layer << "' pool "
    << featx::pool_name(j.pool) << " threads " << j.threads << " isa '" << j.isa << "'";
  return s.str();
}

featx::Status reference(const std::shared_ptr<const Model>& model, const Job& j, int h, int w, uint32_t seed,
                        Expected* e) {
  e->height = h;
  e->width = w;
  e->images = make_images(j.batch, h, w, seed);
  Plan plan;
  FEATX_RETURN_IF_ERROR(Plan::make(model, options_for(j, h, w, j.batch, 1, false), &plan));
  e->per_image = plan.output_elements_per_image();
  std::vector<unsigned char> ws(plan.workspace_bytes());
  e->output.assign(plan.output_elements(), NAN);
  FEATX_RETURN_IF_ERROR(featx::run(plan, e->images.data(), j.batch, ws.data(), ws.size(), e->output.data(),
                                   e->output.size()));
  for (float x : e->output)
    if (!std::isfinite(x)) return featx::invalid_argument("reference output is not finite");
  return featx::Status::Ok();
}

// Compares n images' outputs bit for bit; appends a failure line if not.
void compare(const Expected& e, const float* got, int n, const std::string& what, std::vector<std::string>* errors) {
  const size_t count = size_t(n) * e.per_image;
  if (std::memcmp(got, e.output.data(), count * sizeof(float)) == 0) return;
  size_t i = 0;
  for (; i < count; ++i)
    if (std::memcmp(got + i, e.output.data() + i, sizeof(float)) != 0) break;
  std::ostringstream s;
  s.precision(9);
  s << what << ": n " << n << ": output " << i << " is " << got[i] << ", single-threaded " << e.output[i];
  errors->push_back(s.str());
}

struct Result {
  std::vector<std::string> errors;
  int comparisons = 0;
};

// The workspace is refilled with a byte pattern before each run (run()
// must ignore its contents) and the output with NaN.
void scribble(std::vector<unsigned char>* ws, int iteration) {
  std::fill(ws->begin(), ws->end(), static_cast<unsigned char>(0xA5 ^ iteration));
}

void run_plans(const std::shared_ptr<const Model>& model, const Job& j, const std::vector<Expected>& expected,
               const std::vector<Plan>* shared, Result* r) {
  std::vector<Plan> own;
  const std::vector<Plan>* plans = shared;
  if (!plans) {
    // Plans made here, concurrently with the other threads' plans.
    for (const Expected& e : expected) {
      own.emplace_back();
      featx::Status st = Plan::make(model, options_for(j, e.height, e.width, j.batch, j.threads, j.profile), &own.back());
      if (!st) {
        r->errors.push_back(describe(j, e.height, e.width) + ": Plan::make: " + st.message());
        return;
      }
    }
    plans = &own;
  }
  size_t bytes = 0;
  for (const Plan& p : *plans) bytes = std::max(bytes, p.workspace_bytes());
  std::vector<unsigned char> ws(bytes);  // this thread's own
  std::vector<double> step_ms;
  const int runs = iterations() * int(expected.size());
  for (int it = 0; it < runs; ++it) {
    const size_t k = size_t(it) % expected.size();
    const Expected& e = expected[k];
    const Plan& plan = (*plans)[j.api == Api::shared_plan ? size_t(j.shared_plan) : k];
    const int n = 1 + (it / int(expected.size())) % j.batch;  // 1..batch images of a batch-sized plan
    std::vector<float> out(size_t(n) * e.per_image, NAN);
    scribble(&ws, it);
    step_ms.assign(plan.step_count(), 0.0);
    featx::Status st = featx::run(plan, e.images.data(), n, ws.data(), ws.size(), out.data(), out.size(),
                                  j.profile ? step_ms.data() : nullptr);
    if (!st) {
      r->errors.push_back(describe(j, e.height, e.width) + ": run: " + st.message());
      return;
    }
    compare(e, out.data(), n, describe(j, e.height, e.width), &r->errors);
    ++r->comparisons;
  }
}

void run_extractor(const std::shared_ptr<const Model>& model, const Job& j, const std::vector<Expected>& expected,
                   Result* r) {
  featx::ExtractorOptions o;
  o.pool = j.pool;
  o.layer = j.layer;
  o.threads = j.threads;
  o.isa = j.isa;
  o.profile = j.profile;
  featx::Extractor ex(model, o);  // this thread's own; re-plans as the input size changes
  const int runs = iterations() * int(expected.size());
  for (int it = 0; it < runs; ++it) {
    const Expected& e = expected[size_t(it) % expected.size()];
    const int n = 1 + (it / int(expected.size())) % j.batch;
    featx::Tensor t;
    featx::Status st = j.output == Output::logits ? ex.logits(e.images.data(), n, e.height, e.width, &t)
                       : j.output == Output::probabilities
                           ? ex.probabilities(e.images.data(), n, e.height, e.width, &t)
                           : ex.extract(e.images.data(), n, e.height, e.width, &t);
    if (!st) {
      r->errors.push_back(describe(j, e.height, e.width) + ": Extractor: " + st.message());
      return;
    }
    if (t.data.size() != size_t(n) * e.per_image) {
      r->errors.push_back(describe(j, e.height, e.width) + ": Extractor: wrong output size");
      return;
    }
    compare(e, t.data.data(), n, describe(j, e.height, e.width) + " (Extractor)", &r->errors);
    ++r->comparisons;
  }
}

// Which of run()'s paths the jobs' plans take (for 1 and for batch images),
// so the test can say it went through them.
struct Coverage {
  int images_in_parallel = 0, threads_in_image = 0, grouped_tail = 0, chunked_blocks = 0, fused_blocks = 0;
  void add(const Plan& plan) {
    for (int n : {1, plan.batch()}) {
      const auto& kind = featx::PlanAccess::kind_for(plan, n);
      images_in_parallel += kind.schedule.images_in_parallel;
      threads_in_image += !kind.schedule.images_in_parallel && kind.schedule.threads_per_image > 1;
      grouped_tail += kind.steps.group_images() > 1 && kind.steps.group_start() < kind.steps.steps().size();
      chunked_blocks += kind.steps.group_images() > 1 && !kind.steps.chunked_blocks().empty();
      fused_blocks += !kind.steps.fused_blocks().empty();
    }
  }
};

// The references first (main thread, one thread each), then every job on
// its own std::thread at once, then the checks.
Coverage run_jobs(const std::shared_ptr<const Model>& model, const std::vector<Job>& jobs,
                  const std::vector<Plan>& shared_plans = {}) {
  std::vector<std::vector<Expected>> expected(jobs.size());
  Coverage coverage;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& j = jobs[i];
    for (size_t k = 0; k < j.sizes.size(); ++k) {
      expected[i].emplace_back();
      const auto hw = j.sizes[k];
      featx::Status st = reference(model, j, hw.first, hw.second, uint32_t(100 * i + k + 1), &expected[i].back());
      REQUIRE_MESSAGE(st.ok(), describe(j, hw.first, hw.second) << ": reference: " << st.message());
      Plan plan;  // as the job's thread will make it
      st = Plan::make(model, options_for(j, hw.first, hw.second, j.batch, j.threads, j.profile), &plan);
      REQUIRE_MESSAGE(st.ok(), describe(j, hw.first, hw.second) << ": " << st.message());
      coverage.add(j.api == Api::shared_plan ? shared_plans[size_t(j.shared_plan)] : plan);
    }
  }
  std::vector<Result> results(jobs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < jobs.size(); ++i)
    threads.emplace_back([&, i] {
      const Job& j = jobs[i];
      if (j.api == Api::extractor) run_extractor(model, j, expected[i], &results[i]);
      else run_plans(model, j, expected[i], j.api == Api::shared_plan ? &shared_plans : nullptr, &results[i]);
    });
  for (std::thread& t : threads) t.join();
  int comparisons = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    for (const std::string& e : results[i].errors) CHECK_MESSAGE(false, e);
    CHECK_MESSAGE(results[i].comparisons > 0, jobs[i].label << ": nothing compared");
    comparisons += results[i].comparisons;
  }
  MESSAGE(model->name() << ": " << jobs.size() << " threads, " << comparisons
                        << " outputs bit-identical to the single-threaded run; plans with images in parallel "
                        << coverage.images_in_parallel << ", threads inside an image " << coverage.threads_in_image
                        << ", a grouped tail " << coverage.grouped_tail << " (chunked blocks "
                        << coverage.chunked_blocks << "), fused blocks " << coverage.fused_blocks);
  return coverage;
}

std::shared_ptr<const Model> load(const std::string& path) {
  std::shared_ptr<const Model> model;
  featx::Status st = Model::load(path, &model);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return model;
}

Job job(std::string label, Api api, std::vector<std::pair<int, int>> sizes, int batch, std::string layer, Pool pool,
        int threads, std::string isa = "", bool profile = false) {
  Job j;
  j.label = std::move(label);
  j.api = api;
  j.sizes = std::move(sizes);
  j.batch = batch;
  j.layer = std::move(layer);
  j.pool = pool;
  j.threads = threads;
  j.isa = std::move(isa);
  j.profile = profile;
  return j;
}

}  // namespace

// detail::TaskQueues (the scheduler's task sharing) on its own: std::threads
// claiming at once take every task exactly once, for shares of one task,
// many tasks, fewer tasks than threads and more threads than kMaxShares.
TEST_CASE("task queues: concurrent threads take every task exactly once") {
  for (int threads : {2, 3, 8, featx::detail::kMaxShares + 6}) {
    for (int64_t tasks : {int64_t(1), int64_t(5), int64_t(threads), int64_t(1000)}) {
      CAPTURE(threads);
      CAPTURE(tasks);
      featx::detail::TaskQueues queues(tasks, threads);
      std::vector<std::atomic<int>> taken(static_cast<size_t>(tasks));
      for (auto& t : taken) t.store(0);
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          for (int64_t i = queues.next(t); i >= 0; i = queues.next(t)) taken[size_t(i)].fetch_add(1);
        });
      for (auto& th : pool) th.join();
      int wrong = 0;
      for (auto& t : taken) wrong += t.load() != 1;
      CHECK(wrong == 0);
      CHECK(queues.next(0) == -1);
    }
  }
}

// A thread that never comes: the other runs its own share in its order
// (even shares front to back, odd ones back to front, so neighbours meet in
// the middle), then the missing thread's from its other end, nearest its
// own (the order fused bands rely on: a share's own bands run in order and
// reuse their expanded rows).
TEST_CASE("task queues: one thread alone runs its share in order, then steals the rest from the far end") {
  featx::detail::TaskQueues first(10, 2);
  std::vector<int64_t> order;
  for (int64_t i = first.next(0); i >= 0; i = first.next(0)) order.push_back(i);
  CHECK(order == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  featx::detail::TaskQueues second(10, 2);
  order.clear();
  for (int64_t i = second.next(1); i >= 0; i = second.next(1)) order.push_back(i);
  CHECK(order == std::vector<int64_t>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  featx::detail::TaskQueues late(4, 2);
  CHECK(late.next(1) == 3);  // thread 1's own back
  CHECK(late.next(0) == 0);
  CHECK(late.next(0) == 1);
  CHECK(late.next(0) == 2);  // stolen from the front of thread 1's share
  CHECK(late.next(1) == -1);
}

// detail::ThreadTeam (one region per forward pass, a job per split step):
// many jobs back to back, each task run exactly once, thread indices inside
// the team, a thread's State kept across its tasks of one job and fresh for
// the next. Inside another parallel region the team gets what OpenMP gives
// it (one thread without nesting) and still runs every task.
TEST_CASE("thread team: jobs back to back run every task once, on threads of the team") {
  for (int requested : {1, 2, 3}) {
    CAPTURE(requested);
    featx::detail::ThreadTeam team(requested);
    CHECK(team.threads() == 1);  // outside run()
    int wrong = 0, bad_thread = 0, stale_state = 0, jobs = 0, team_threads = 0;
    team.run([&] {
      team_threads = team.threads();
      for (int64_t tasks = 0; tasks < 300; ++tasks) {
        std::vector<std::atomic<int>> taken(static_cast<size_t>(tasks));
        for (auto& t : taken) t.store(0);
        struct Count { int job = -1; };
        std::atomic<int> bad{0}, stale{0};
        team.run_tasks_with_state<Count>(tasks, [&](int64_t i, int t, Count& c) {
          if (t < 0 || t >= team.threads()) bad.fetch_add(1);
          if (c.job != -1 && c.job != jobs) stale.fetch_add(1);
          c.job = jobs;
          taken[size_t(i)].fetch_add(1);
        });
        for (auto& t : taken) wrong += t.load() != 1;
        bad_thread += bad.load();
        stale_state += stale.load();
        ++jobs;
      }
    });
    CHECK(jobs == 300);
    CHECK(wrong == 0);
    CHECK(bad_thread == 0);
    CHECK(stale_state == 0);
    CHECK(team_threads == (featx::detail::resolve_threads(requested) > 1 ? requested : 1));
    CHECK(team.threads() == 1);
  }
#ifdef FEATX_OPENMP
  std::atomic<int> wrong{0};
#pragma omp parallel num_threads(2)
  {
    featx::detail::ThreadTeam inner(2);
    inner.run([&] {
      std::vector<std::atomic<int>> taken(50);
      for (auto& t : taken) t.store(0);
      inner.run_tasks(50, [&](int64_t i, int) { taken[size_t(i)].fetch_add(1); });
      for (auto& t : taken) wrong.fetch_add(t.load() != 1);
    });
  }
  CHECK(wrong.load() == 0);
#endif
}

TEST_CASE("threads share one Model, each with its own plans and workspace") {
  const auto model = load(test_support::small_model_path());
  // Both OpenMP schedules: threads inside one image (batch 1, or profiling)
  // and images in parallel (batch 2 with 2 threads, the grouped tail);
  // fused and chunked blocks; the scalar and AVX2 kernels beside the best;
  // 1, 2, 3 (more than the cores CI has) and OpenMP's default threads.
  std::vector<Job> jobs = {
      job("plan-96-avg-t1", Api::plan_run, {{96, 96}}, 1, "", Pool::avg, 1),
      job("plan-128-avg-t2", Api::plan_run, {{128, 128}}, 1, "", Pool::avg, 2),
      job("plan-160-b2-t2", Api::plan_run, {{160, 160}}, 2, "", Pool::avg, 2),
      job("plan-112x80-layer-none-b2-t1", Api::plan_run, {{112, 80}}, 2, "expanded_conv_3/expand", Pool::none, 1),
      job("plan-96-keras-layer-max-t2", Api::plan_run, {{96, 96}, {128, 96}}, 2, "block_5_add", Pool::max, 2),
      job("extractor-96-128-avg-t2", Api::extractor, {{96, 96}, {128, 128}}, 2, "", Pool::avg, 2),
      job("extractor-160-layer-none-t1", Api::extractor, {{160, 160}, {96, 96}}, 1, "expanded_conv_6/depthwise",
          Pool::none, 1),
      job("extractor-profile-t2", Api::extractor, {{128, 128}}, 2, "Conv_1", Pool::avg, 2, "", true),
      job("plan-scalar-t2", Api::plan_run, {{96, 96}}, 2, "", Pool::avg, 2, "scalar"),
      job("plan-avx2-b2-t1", Api::plan_run, {{128, 128}}, 2, "expanded_conv_13", Pool::avg, 1, "avx2"),
      job("plan-96-b3-t3", Api::plan_run, {{96, 96}}, 3, "", Pool::avg, 3),
      job("extractor-omp-default", Api::extractor, {{96, 128}}, 2, "", Pool::avg, 0),
      job("plan-96-b5-t2-grouped", Api::plan_run, {{96, 96}}, 5, "", Pool::avg, 2),
      job("extractor-96-b4-t1-grouped", Api::extractor, {{96, 96}}, 4, "", Pool::avg, 1),
  };
  const Coverage c = run_jobs(model, jobs);
  CHECK(c.images_in_parallel > 0);
  CHECK(c.threads_in_image > 0);
  CHECK(c.grouped_tail > 0);
  CHECK(c.fused_blocks > 0);
  // Chunked blocks need SIMD kernels (the AVX2 job; not on a CPU without them).
  if (featx::isa_supported(featx::Isa::avx2)) CHECK(c.chunked_blocks > 0);
}

TEST_CASE("threads share one Plan, each with its own workspace") {
  const auto model = load(test_support::small_model_path());
  PlanOptions o;
  o.height = o.width = 128;
  o.batch = 2;
  o.threads = 2;
  std::vector<Plan> plans(1);
  featx::Status st = Plan::make(model, o, &plans[0]);
  REQUIRE_MESSAGE(st.ok(), st.message());
  std::vector<Job> jobs;
  for (int i = 0; i < 3; ++i) {
    jobs.push_back(job("shared-plan-" + std::to_string(i), Api::shared_plan, {{128, 128}}, 2, "", Pool::avg, 2));
    jobs.back().shared_plan = 0;
  }
  run_jobs(model, jobs, plans);
}

TEST_CASE("threads share a model with a Dense head: logits, probabilities, a Dense layer") {
  const std::string path = test_support::models_dir() + "/random_a1.0_r224_s1_c10.featx";
  const auto model = load(path);
  REQUIRE(model->has_classifier());
  std::vector<Job> jobs = {
      job("logits-96-t2", Api::extractor, {{96, 96}}, 2, "", Pool::avg, 2),
      job("probabilities-96-t1", Api::extractor, {{96, 96}, {64, 64}}, 1, "", Pool::avg, 1),
      job("dense-layer-64-b2-t2", Api::plan_run, {{64, 64}}, 2, model->head()[0].name, Pool::avg, 2),
  };
  jobs[0].output = Output::logits;
  jobs[1].output = Output::probabilities;
  run_jobs(model, jobs);
}

TEST_CASE("threads share the TF2 MobileNetV2 1.0 (real weights)") {
  const std::string path = test_support::models_dir() + "/tflite_tf2_mobilenet_v2_1.0_224_ptq.featx";
  if (!test_support::exists(path)) {
    MESSAGE("SKIPPED: " << path << " not found (needs the shared folder when the test models are made)");
    return;
  }
  const auto model = load(path);
  std::vector<Job> jobs = {
      job("tf2-96-t2", Api::plan_run, {{96, 96}}, 1, "", Pool::avg, 2),
      job("tf2-128-b2-t2", Api::plan_run, {{128, 128}}, 2, "", Pool::avg, 2),
      job("tf2-extractor-96-layer-t1", Api::extractor, {{96, 96}}, 1, "expanded_conv_10/project", Pool::none, 1),
  };
  run_jobs(model, jobs);
}

TEST_CASE("models loaded concurrently (file, memory, prepacked in place) give the shared model's bits") {
  const std::string path = test_support::small_model_path();
  const std::string prepacked = test_support::models_dir() + "/random_a0.35_r96_s1_c0_prepacked.featx";
  const auto model = load(path);
  Job j = job("load", Api::plan_run, {{96, 96}}, 1, "", Pool::avg, 2);
  Expected e;
  featx::Status st = reference(model, j, 96, 96, 7, &e);
  REQUIRE_MESSAGE(st.ok(), st.message());
  const std::vector<uint8_t> bytes = test_support::read_bytes(path);  // read by every memory loader
  REQUIRE(!bytes.empty());
  const bool have_prepacked = test_support::exists(prepacked);
  std::vector<Result> results(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      Result& r = results[size_t(i)];
      std::shared_ptr<const Model> m;
      const int how = i % 3;
      featx::Status s = how == 0 ? Model::load(path, &m)
                        : how == 1 ? Model::from_memory(bytes.data(), bytes.size(), "memory", &m)
                                   : Model::load(have_prepacked ? prepacked : path, &m);
      if (!s) {
        r.errors.push_back("load " + std::to_string(i) + ": " + s.message());
        return;
      }
      Plan plan;
      s = Plan::make(m, options_for(j, 96, 96, 1, 1 + i % 2, false), &plan);
      if (!s) {
        r.errors.push_back("Plan::make " + std::to_string(i) + ": " + s.message());
        return;
      }
      std::vector<unsigned char> ws(plan.workspace_bytes());
      std::vector<float> out(plan.output_elements(), NAN);
      s = featx::run(plan, e.images.data(), 1, ws.data(), ws.size(), out.data(), out.size());
      if (!s) {
        r.errors.push_back("run " + std::to_string(i) + ": " + s.message());
        return;
      }
      compare(e, out.data(), 1, "loader " + std::to_string(i), &r.errors);
      ++r.comparisons;
    });
  for (std::thread& t : threads) t.join();
  for (const Result& r : results) {
    for (const std::string& err : r.errors) CHECK_MESSAGE(false, err);
    CHECK(r.comparisons == 1);
  }
  if (!have_prepacked) MESSAGE("prepacked model not found: loaded the raw file instead");
}

// Not run by default: tests/tsan_test.sh runs it with --no-skip and requires
// ThreadSanitizer to report a race inside include/featx. Two threads share
// ONE workspace (the API forbids it), so both write the same arena: the
// proof that the TSan build sees featx's own accesses, not only a toy's.
TEST_CASE("canary: two threads misuse one workspace (TSan must report it)" * doctest::skip()) {
  const auto model = load(test_support::small_model_path());
  Job j = job("canary", Api::plan_run, {{96, 96}}, 1, "", Pool::avg, 1, "scalar");
  Plan plan;
  featx::Status st = Plan::make(model, options_for(j, 96, 96, 1, 1, false), &plan);
  REQUIRE_MESSAGE(st.ok(), st.message());
  const std::vector<float> images = make_images(1, 96, 96, 3);
  std::vector<unsigned char> ws(plan.workspace_bytes());  // shared: the bug
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      std::vector<float> out(plan.output_elements());
      for (int it = 0; it < 2; ++it)
        (void)featx::run(plan, images.data(), 1, ws.data(), ws.size(), out.data(), out.size());
    });
  for (std::thread& t : threads) t.join();
}
