from mecsa.cli import main

main()
