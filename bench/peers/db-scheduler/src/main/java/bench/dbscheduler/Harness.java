package bench.dbscheduler;

import com.github.kagkarlsson.scheduler.Scheduler;
import com.github.kagkarlsson.scheduler.SchedulerBuilder;
import com.github.kagkarlsson.scheduler.SchedulerClient;
import com.github.kagkarlsson.scheduler.event.AbstractSchedulerListener;
import com.github.kagkarlsson.scheduler.task.Execution;
import com.github.kagkarlsson.scheduler.task.SchedulableInstance;
import com.github.kagkarlsson.scheduler.task.helper.OneTimeTask;
import com.github.kagkarlsson.scheduler.task.helper.Tasks;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.math.BigDecimal;
import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * db-scheduler peer harness: {@code java -jar target/harness.jar '<json>'}, commands setup /
 * ingest / enqueue / work as described in bench/peers/README.md. Settings per profile: SETTINGS.md.
 */
public final class Harness {

  /** The task's data: {@code {"i": <index>, "due": <epoch ms>}} (db-scheduler's default Java serialization). */
  public record Payload(long i, double due) implements Serializable {}

  static final String TASK_NAME = "noop";

  // Profile settings (documented in SETTINGS.md).
  static final int DEFAULTS_THREADS = 10; // the builder's default
  static final int TUNED_THREADS = 20;
  static final Duration TUNED_POLLING_INTERVAL = Duration.ofMillis(10);
  static final double TUNED_LOWER_LIMIT_FRACTION = 1.0;
  static final double TUNED_UPPER_LIMIT_FRACTION = 4.0;
  static final int TUNED_MISSED_HEARTBEATS_LIMIT = 4; // the builder's minimum
  /** HikariCP pool: scheduler threads + 3 (due loop, heartbeats, dead-execution check), capped. */
  static final int POOL_EXTRA = 3;
  static final int POOL_CAP = 50; // PostgreSQL's default max_connections is 100

  public static void main(String[] argv) {
    try {
      if (argv.length != 1) throw new IllegalArgumentException("expected one JSON argument");
      Object parsed = Json.parse(argv[0]);
      if (!(parsed instanceof Map)) throw new IllegalArgumentException("the argument is not a JSON object");
      @SuppressWarnings("unchecked")
      Args a = new Args((Map<String, Object>) parsed);
      switch (a.command) {
        case "setup":
          setup(a);
          break;
        case "ingest":
        case "enqueue":
          enqueue(a);
          break;
        case "work":
          work(a); // returns only on failure; SIGTERM exits from the shutdown hook
          break;
        default:
          throw new IllegalArgumentException("unknown command: " + a.command);
      }
      System.out.flush();
      System.exit(0);
    } catch (Throwable t) {
      fail(t);
    }
  }

  static void fail(Throwable t) {
    String msg = t.getMessage() == null ? "" : t.getMessage().replace('\n', ' ');
    Throwable c = t.getCause();
    String cause = c == null || c.getMessage() == null ? "" : " (" + c.getMessage().replace('\n', ' ') + ")";
    System.err.println("db-scheduler harness: " + t.getClass().getSimpleName() + ": " + msg + cause);
    System.err.flush();
    Runtime.getRuntime().halt(1);
  }

  // ---------------------------------------------------------------- arguments

  static final class Args {
    final String command, profile, postgresUrl, schema, api, recordFile;
    final long count, batchSize, handlerMs;
    final double firstDueAt, intervalMs;
    final Integer concurrency;
    final Long leaseMs;

    Args(Map<String, Object> m) {
      command = str(m, "command", null);
      profile = str(m, "profile", "defaults");
      if (!profile.equals("defaults") && !profile.equals("tuned"))
        throw new IllegalArgumentException("unknown profile: " + profile);
      postgresUrl = str(m, "postgresUrl", null);
      schema = str(m, "schema", null);
      if (command == null) throw new IllegalArgumentException("missing field: command");
      if (postgresUrl == null) throw new IllegalArgumentException("missing field: postgresUrl");
      if (schema == null || schema.isEmpty()) throw new IllegalArgumentException("missing field: schema");
      api = str(m, "api", "batch");
      recordFile = str(m, "recordFile", null);
      count = (long) num(m, "count", 0);
      batchSize = (long) num(m, "batchSize", SchedulerClient.DEFAULT_BATCH_SIZE);
      handlerMs = (long) num(m, "handlerMs", 0);
      firstDueAt = num(m, "firstDueAt", System.currentTimeMillis());
      intervalMs = num(m, "intervalMs", 0);
      concurrency = m.get("concurrency") == null ? null : (int) num(m, "concurrency", 0);
      leaseMs = m.get("leaseMs") == null ? null : (long) num(m, "leaseMs", 0);
    }

    boolean tuned() {
      return profile.equals("tuned");
    }

    private static String str(Map<String, Object> m, String k, String dflt) {
      Object v = m.get(k);
      if (v == null) return dflt;
      if (!(v instanceof String)) throw new IllegalArgumentException("field " + k + " is not a string");
      return (String) v;
    }

    private static double num(Map<String, Object> m, String k, double dflt) {
      Object v = m.get(k);
      if (v == null) return dflt;
      if (!(v instanceof Double)) throw new IllegalArgumentException("field " + k + " is not a number");
      return (Double) v;
    }
  }

  // ---------------------------------------------------------------- database

  static String quoteIdent(String name) {
    return "\"" + name.replace("\"", "\"\"") + "\"";
  }

  /**
   * A HikariCP pool on {@code postgresUrl} (a libpq-style postgres:// URL, or a jdbc: URL) whose
   * connections use {@code schema} as their search_path (pgjdbc's currentSchema).
   */
  static HikariDataSource dataSource(Args a, int poolSize, boolean withSchema) {
    HikariConfig c = new HikariConfig();
    String url = a.postgresUrl;
    String sep;
    if (url.startsWith("jdbc:")) {
      sep = url.contains("?") ? "&" : "?";
    } else {
      URI u = URI.create(url);
      if (!"postgres".equals(u.getScheme()) && !"postgresql".equals(u.getScheme()))
        throw new IllegalArgumentException("postgresUrl: unsupported scheme " + u.getScheme());
      String info = u.getRawUserInfo();
      if (info != null) {
        int colon = info.indexOf(':');
        c.setUsername(URLDecoder.decode(colon < 0 ? info : info.substring(0, colon), StandardCharsets.UTF_8));
        if (colon >= 0) c.setPassword(URLDecoder.decode(info.substring(colon + 1), StandardCharsets.UTF_8));
      }
      String host = u.getHost() == null ? "localhost" : u.getHost();
      int port = u.getPort() < 0 ? 5432 : u.getPort();
      String db = u.getRawPath() == null || u.getRawPath().length() <= 1 ? "" : u.getRawPath().substring(1);
      url = "jdbc:postgresql://" + host + ":" + port + "/" + db + (u.getRawQuery() == null ? "" : "?" + u.getRawQuery());
      sep = u.getRawQuery() == null ? "?" : "&";
    }
    if (withSchema) {
      String path = a.schema.matches("[a-z_][a-z0-9_$]*") ? a.schema : quoteIdent(a.schema);
      url += sep + "currentSchema=" + URLEncoder.encode(path, StandardCharsets.UTF_8);
      sep = "&";
    }
    url += sep + "ApplicationName=db-scheduler-harness";
    c.setJdbcUrl(url);
    c.setMaximumPoolSize(poolSize);
    c.setPoolName("harness");
    return new HikariDataSource(c);
  }

  /** db-scheduler's PostgreSQL table definition (postgresql_tables.sql at v16.7.1), in `schema`. */
  static void setup(Args a) throws Exception {
    String s = quoteIdent(a.schema);
    try (HikariDataSource ds = dataSource(a, 1, false);
        Connection conn = ds.getConnection();
        Statement st = conn.createStatement()) {
      st.execute("CREATE SCHEMA IF NOT EXISTS " + s);
      st.execute(
          "CREATE TABLE IF NOT EXISTS " + s + ".scheduled_tasks ("
              + " task_name text not null,"
              + " task_instance text not null,"
              + " task_data bytea,"
              + " execution_time timestamp with time zone not null,"
              + " picked BOOLEAN not null,"
              + " picked_by text,"
              + " last_success timestamp with time zone,"
              + " last_failure timestamp with time zone,"
              + " consecutive_failures INT,"
              + " last_heartbeat timestamp with time zone,"
              + " version BIGINT not null,"
              + " priority SMALLINT,"
              + " PRIMARY KEY (task_name, task_instance))");
      st.execute("CREATE INDEX IF NOT EXISTS execution_time_idx ON " + s + ".scheduled_tasks (execution_time)");
      st.execute("CREATE INDEX IF NOT EXISTS last_heartbeat_idx ON " + s + ".scheduled_tasks (last_heartbeat)");
      st.execute(
          "CREATE INDEX IF NOT EXISTS priority_execution_time_idx ON " + s
              + ".scheduled_tasks (priority desc, execution_time asc)");
    }
    System.err.println("setup: schema " + a.schema + " ready");
  }

  // ---------------------------------------------------------------- ingest / enqueue

  static Instant instantOfMs(double ms) {
    long whole = (long) Math.floor(ms);
    long nanos = Math.round((ms - whole) * 1e6);
    return Instant.ofEpochMilli(whole).plusNanos(nanos);
  }

  static void enqueue(Args a) throws Exception {
    if (!a.api.equals("single") && !a.api.equals("batch"))
      throw new IllegalArgumentException("unknown api: " + a.api);
    if (a.count < 0 || a.count > Integer.MAX_VALUE) throw new IllegalArgumentException("bad count");
    if (a.api.equals("batch") && a.batchSize < 1) throw new IllegalArgumentException("bad batchSize");
    int n = (int) a.count;
    OneTimeTask<Payload> task = noopTask(null, 0);

    // Every instance is built before the clock starts: only the scheduling calls are timed.
    List<SchedulableInstance<?>> instances = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      double due = a.firstDueAt + i * a.intervalMs;
      instances.add(SchedulableInstance.of(task.instance(String.valueOf(i), new Payload(i, due)), instantOfMs(due)));
    }

    try (HikariDataSource ds = dataSource(a, 2, true)) {
      // The client alone: no polling, no executor threads.
      SchedulerClient client = SchedulerClient.Builder.create(ds, task).build();
      long t0 = System.nanoTime();
      if (a.api.equals("single")) {
        for (SchedulableInstance<?> inst : instances) client.schedule(inst);
      } else {
        int size = (int) Math.min(a.batchSize, Integer.MAX_VALUE);
        for (int from = 0; from < n; from += size) {
          client.scheduleBatch(instances.subList(from, Math.min(n, from + size)));
        }
      }
      double ms = (System.nanoTime() - t0) / 1e6;
      System.out.println(
          "{\"event\":\"done\",\"count\":" + n + ",\"ms\":" + String.format(Locale.ROOT, "%.3f", ms) + "}");
      System.out.flush();
    }
  }

  // ---------------------------------------------------------------- work

  /** One O_APPEND file; each record is one write(2) call. */
  static final class RecordFile {
    private final FileOutputStream out;

    RecordFile(String path) throws IOException {
      out = new FileOutputStream(path, true);
    }

    synchronized void append(byte[] line) {
      try {
        out.write(line);
      } catch (IOException e) {
        fail(e);
      }
    }

    synchronized void close() {
      try {
        out.close();
      } catch (IOException ignored) {
        // exiting anyway
      }
    }
  }

  static String plain(double ms) {
    if (ms == Math.rint(ms) && Math.abs(ms) < 9e15) return Long.toString((long) ms);
    return BigDecimal.valueOf(ms).stripTrailingZeros().toPlainString();
  }

  static String epochMs() {
    Instant now = Instant.now();
    return String.format(Locale.ROOT, "%.3f", now.getEpochSecond() * 1000.0 + now.getNano() / 1e6);
  }

  static OneTimeTask<Payload> noopTask(RecordFile records, long handlerMs) {
    return Tasks.oneTime(TASK_NAME, Payload.class)
        .execute(
            (inst, ctx) -> {
              Payload p = inst.getData();
              String started = p.i() + " " + plain(p.due()) + " " + epochMs();
              records.append((started + "\n").getBytes(StandardCharsets.US_ASCII));
              if (handlerMs > 0) {
                try {
                  Thread.sleep(handlerMs);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                  return;
                }
                // The completion record, which the recovery scenario waits for.
                records.append((started + " " + epochMs() + "\n").getBytes(StandardCharsets.US_ASCII));
              }
            });
  }

  static void work(Args a) throws Exception {
    if (a.recordFile == null) throw new IllegalArgumentException("missing field: recordFile");
    int threads = a.concurrency != null ? a.concurrency : (a.tuned() ? TUNED_THREADS : DEFAULTS_THREADS);
    if (threads < 1) throw new IllegalArgumentException("bad concurrency");
    RecordFile records = new RecordFile(a.recordFile);
    HikariDataSource ds = dataSource(a, Math.min(threads + POOL_EXTRA, POOL_CAP), true);
    // The scheduler only logs failed polls (to slf4j-nop here): fail now if the table is missing.
    try (Connection conn = ds.getConnection();
        Statement st = conn.createStatement()) {
      st.execute("SELECT 1 FROM scheduled_tasks LIMIT 0");
    }

    SchedulerBuilder b = Scheduler.create(ds, noopTask(records, a.handlerMs)).threads(threads);
    String settings;
    if (a.tuned()) {
      b.pollingInterval(TUNED_POLLING_INTERVAL)
          .pollUsingLockAndFetch(TUNED_LOWER_LIMIT_FRACTION, TUNED_UPPER_LIMIT_FRACTION)
          .enableImmediateExecution();
      settings = "threads=" + threads + " pollingInterval=" + TUNED_POLLING_INTERVAL.toMillis() + "ms lock-and-fetch("
          + TUNED_LOWER_LIMIT_FRACTION + ", " + TUNED_UPPER_LIMIT_FRACTION + ") immediateExecution";
      if (a.leaseMs != null) {
        // An execution is dead once its heartbeat is older than heartbeatInterval * limit.
        long hb = Math.max(1, a.leaseMs / TUNED_MISSED_HEARTBEATS_LIMIT);
        b.heartbeatInterval(Duration.ofMillis(hb)).missedHeartbeatsLimit(TUNED_MISSED_HEARTBEATS_LIMIT);
        settings += " heartbeatInterval=" + hb + "ms missedHeartbeatsLimit=" + TUNED_MISSED_HEARTBEATS_LIMIT;
      }
    } else {
      settings = "threads=" + threads + " (everything else as shipped)";
      if (a.leaseMs != null) settings += "; leaseMs ignored (defaults: heartbeat 5m x 6)";
    }
    AtomicLong dead = new AtomicLong();
    b.addSchedulerListener(
        new AbstractSchedulerListener() {
          @Override
          public void onExecutionDead(Execution execution) {
            long n = dead.incrementAndGet();
            if (n == 1 || n % 100 == 0) System.err.println("work: dead executions revived so far: " + n);
          }
        });
    Scheduler scheduler = b.build();

    CountDownLatch forever = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  System.err.println("work: stopping (signal)");
                  try {
                    scheduler.stop(); // lets picked executions finish
                    ds.close();
                    records.close();
                  } catch (Throwable t) {
                    System.err.println("work: error while stopping: " + t);
                    System.err.flush();
                    Runtime.getRuntime().halt(1);
                  }
                  System.err.println("work: stopped; dead executions revived: " + dead.get());
                  System.out.flush();
                  System.err.flush();
                  Runtime.getRuntime().halt(0); // a JVM ended by SIGTERM would otherwise exit 143
                },
                "harness-shutdown"));

    scheduler.start();
    System.err.println("work: profile " + a.profile + ": " + settings);
    System.out.println("{\"event\":\"ready\"}");
    System.out.flush();
    forever.await();
  }
}
