from bench.filter_eval.evaluate import main

main()
