// A Java job for test_migrate: a pool of 3 worker threads sums a series
// per round, the main thread prints each round's total, for ~3 s. Run
// with the JVM's defaults, so it keeps its perf-data file,
// /tmp/hsperfdata_USER/PID, mapped shared: the file moves with it. The
// output depends only on ROUNDS.
//   javac -d DIR JavaWorkers.java && java -cp DIR JavaWorkers ROUNDS
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

public class JavaWorkers {
  public static void main(String[] args) throws Exception {
    int rounds = Integer.parseInt(args[0]);
    ExecutorService pool = Executors.newFixedThreadPool(3);
    long total = 0;
    for (int i = 0; i < rounds; i++) {
      final int k = i;
      Future<Long> f = pool.submit(() -> {
        long s = 0;
        for (int j = 0; j < 200000; j++) s += (long) j * k % 7;
        return s;
      });
      total += f.get();
      System.out.println(i + " " + total);
      Thread.sleep(10);
    }
    pool.shutdown();
  }
}
