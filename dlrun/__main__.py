from dlrun.cli.main import main

main()
